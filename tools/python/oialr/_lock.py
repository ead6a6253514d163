"""oialr._lock — the trajectory writer's liveness lock, as the C writer takes it.

A writer holds an OFD write lock (Linux open-file-description lock) on one
byte far past the data, LOCK_OFFSET = 2**40, of the file it writes
(lib/record/trajectory_file.c). OFD locks do not interact with the flock()
HDF5 takes, and they go away with the process however it ends, so a reader
that finds the byte locked knows a writer is alive; a file left "open for
write" whose byte is free was killed. Filesystems without OFD locks: no
lock, no liveness hint (the C writer does the same).
"""

import errno
import fcntl
import os
import struct

LOCK_OFFSET = 1 << 40

# struct flock on Linux: short l_type, l_whence; off_t l_start, l_len; pid_t l_pid
_FLOCK = "hhqqi4x"
_SETLK = getattr(fcntl, "F_OFD_SETLK", None)
_GETLK = getattr(fcntl, "F_OFD_GETLK", None)


def _writer_byte(fd, cmd, ltype):
    """fcntl(fd, cmd) on the writer's byte with a lock of ltype; the l_type answered."""
    arg = struct.pack(_FLOCK, ltype, os.SEEK_SET, LOCK_OFFSET, 1, 0)
    out = fcntl.fcntl(fd, cmd, arg)
    return struct.unpack(_FLOCK, out)[0]


def take(path):
    """Open path and write-lock the writer's byte. Returns the descriptor that
    holds the lock (close it to release), or None where OFD locks do not
    exist. Raises BlockingIOError if another writer holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    if _SETLK is None:
        return fd
    try:
        _writer_byte(fd, _SETLK, fcntl.F_WRLCK)
    except OSError as e:
        os.close(fd)
        if e.errno in (errno.EAGAIN, errno.EACCES):
            raise BlockingIOError(e.errno, f"{path}: another process is writing this trajectory") from None
        return None  # no OFD locks here: record without the liveness hint
    return fd


def held(path):
    """True if some process (this one included, through another open) holds
    the writer lock of the file at path; False if not, or if unknown."""
    if _GETLK is None:
        return False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        return _writer_byte(fd, _GETLK, fcntl.F_RDLCK) != fcntl.F_UNLCK
    except OSError:
        return False
    finally:
        os.close(fd)
