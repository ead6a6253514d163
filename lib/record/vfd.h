/*
 * vfd.h — the trajectory writer's HDF5 file driver (internal to lib/record).
 *
 * The POSIX driver's semantics (one file, pread/pwrite, flock, SWMR-capable,
 * files identical to sec2's: any reader opens them with the default driver),
 * with one difference: the whole 4 KiB pages of a large write from a 4 KiB
 * aligned buffer to a 4 KiB aligned address go through a second descriptor
 * opened with O_DIRECT. A snapshot then goes from the recorder's buffer to
 * the disk by DMA instead of being copied into the page cache and written
 * back later, which on the bench machine costs 20x less CPU (docs/format.md,
 * "How the writer writes"). Everything else (metadata, small or unaligned
 * writes, all reads) takes the page cache. Where O_DIRECT is refused
 * (some network filesystems, older tmpfs), or with OIALR_DIRECT_IO=0 in the
 * environment, the driver is plain buffered I/O.
 */
#ifndef OIALR_RECORD_VFD_H
#define OIALR_RECORD_VFD_H

#include <hdf5.h>
#include <stdint.h>

#define OIALR_VFD_ALIGN 4096                /* page: address, length and buffer alignment */
#define OIALR_VFD_MIN_DIRECT (64 * 1024)    /* smaller writes take the page cache */

/* Set the driver on a file access list (and the 4 KiB alignment of file
 * allocations of at least OIALR_VFD_MIN_DIRECT bytes). <0 on failure. */
herr_t oialr_vfd_set_fapl(hid_t fapl);

/* The driver's state of an open file, NULL when the file uses another
 * driver (ask once: it copies the file's access property list). */
typedef struct oialr_vfd_file oialr_vfd_file;
oialr_vfd_file *oialr_vfd_of(hid_t file);

/* Bytes written so far with O_DIRECT (0 for NULL). */
uint64_t oialr_vfd_direct_bytes(const oialr_vfd_file *f);

/* Let writes go direct (1, the default where the filesystem allows) or
 * through the page cache (0): a direct write waits for the disk, a buffered
 * one only for the copy. No-op for NULL. */
void oialr_vfd_set_direct(oialr_vfd_file *f, int on);

#endif
