#!/usr/bin/python3
"""make_seeds.py — how the seed corpora in tests/fuzz/corpus/ were made.

Not needed at run time (the seeds are committed); rerun to remake them:

    /usr/bin/python3 tests/fuzz/make_seeds.py build/oialr

idx, cifar, spec, cli: small hand-made inputs in each target's input format
(tests/fuzz/fuzz_<target>.c). traj: two runs of the CLI on synthetic data
(a full-rank MLP, and an OIALR run whose classifier switches to factors:
format 2, events, a checkpoint), each shrunk by copying it with its
checkpoint arrays cut to 16 elements; once in HDF5's latest format (as the
writer makes it, with metadata checksums) and once in the earliest (no
checksums, so a mutation reaches the reader's checks instead of failing
HDF5's checksum). Needs h5py and numpy.
"""
import gzip
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import h5py
import numpy as np

TOP = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(TOP, "corpus")


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def idx(ndim_dims, payload):
    return struct.pack(">BBBB", 0, 0, 8, len(ndim_dims)) + b"".join(struct.pack(">I", d) for d in ndim_dims) + payload


def gz(b):
    return gzip.compress(b, mtime=0)


def idx_seed(flags, labels, images):
    return struct.pack("<BH", flags, len(labels)) + labels + images


def seeds_idx():
    rng = np.random.default_rng(1)
    for n, h, w, k, flags, name in ((3, 4, 4, 10, 1, "mnist-3x4x4"), (2, 28, 28, 10, 1, "mnist-2x28x28"),
                                    (4, 2, 3, 20, 0, "idx-20-classes")):
        y = bytes(rng.integers(0, k, n, dtype=np.uint8))
        x = bytes(rng.integers(0, 256, n * h * w, dtype=np.uint8))
        lab, img = idx([n], y), idx([n, h, w], x)
        put("idx", name, idx_seed(flags, lab, img))
        put("idx", name + ".gz", idx_seed(flags, gz(lab), gz(img)))


def seeds_cifar():
    rng = np.random.default_rng(2)

    def rec(n):
        return b"".join(bytes([int(rng.integers(0, 10))]) + bytes(rng.integers(0, 256, 3072, dtype=np.uint8))
                        for _ in range(n))
    put("cifar", "one-file-2-records", bytes([0]) + rec(2))
    put("cifar", "two-files-1-record", bytes([1]) + rec(2))


def seeds_spec():
    for i, (shape, spec) in enumerate((((1, 27, 27, 8), "mlp:16,8"), ((1, 27, 27, 8), "mlp:4,act=gelu,dropout=0.1"),
                                       ((2, 7, 7, 8), "cnn:4,8,blocks=1"), ((0, 3, 3, 3), "cnn:2,act=tanh"),
                                       ((0, 7, 7, 8), "vit:patch=2,dim=8,depth=1,heads=2,mlp=8"),
                                       ((2, 7, 7, 3), "vit:patch=4,dim=4,depth=1,heads=1,mlp=4,pool=mean"),
                                       ((0, 27, 27, 8), "mlp"))):
        put("spec", "spec-%d" % i, bytes(shape) + spec.encode())


def seeds_cli():
    for name, args in (
            ("train", "train\n--model\nmlp:64\n--epochs\n2\n--batch\n32\n--lr\n0.1\n--record\nrun.h5\n--every\n10"),
            ("train-oialr", "train\n--opt\nadamw\n--sched\ncosine\n--warmup\n5\n--oialr\nstability:0.99,lag=50\n"
                            "--oialr-every\n10\n--beta\n0.15\n--oialr-moments\nproject"),
            ("train-delay", "train\n--oialr\ndelay:100\n--oialr-keep-first\n--quiet\n--threads\n1"),
            ("analyze", "analyze\nrun.h5\n-o\nout.h5\n--csv\ntables\n--lag=2\n--policy\nauto\n--layers\nfc*"),
            ("analyze-mean", "analyze\nrun.h5\n--policy=mean-stability:0.98\n--tau\n0.9\n--double\n-q"),
            ("plot", "plot\ntables\n-o\nfigures\n--run\nrun.h5\n--tau\n0.95"),
            ("cli", "cli\n42\n-1.5e3\nadamw\n'quoted arg'\n")):
        put("cli", name, args)


def copy_attrs(src, dst):
    for k, v in src.attrs.items():
        dst.attrs.create(k, v, dtype=src.attrs.get_id(k).dtype)


def copy_group(src, dst, cut):
    """Recreate every dataset (shape, max shape, chunks, filters, type) and
    attribute of src in dst; arrays in a group named in cut lose all but
    their first 16 columns. (h5py's copy, H5Ocopy, crashes on these files.)"""
    copy_attrs(src, dst)
    for name, obj in src.items():
        if isinstance(obj, h5py.Group):
            copy_group(obj, dst.create_group(name, track_order=True), cut)
            continue
        a = obj[...]
        shape, maxshape, chunks = obj.shape, obj.maxshape, obj.chunks
        if src.name.strip("/") in cut and a.ndim == 2:
            a = a[:, :16]
            shape, maxshape, chunks = a.shape, None, None
        d = dst.create_dataset(name, shape=shape, maxshape=maxshape, chunks=chunks, dtype=obj.dtype,
                               compression=obj.compression, compression_opts=obj.compression_opts,
                               shuffle=obj.shuffle)
        # only the written rows of each chunked dataset (unwritten rows
        # keep no storage, as in the writer's file)
        if a.size:
            d[...] = a
        copy_attrs(obj, d)


def shrink(src, dst, libver):
    """Copy a trajectory with its checkpoint arrays cut to 16 elements."""
    with h5py.File(src, "r") as f, h5py.File(dst, "w", libver=libver, track_order=True) as g:
        copy_group(f, g, ("checkpoint",))


def seeds_traj(cli):
    tmp = tempfile.mkdtemp()
    try:
        runs = {
            "mlp": ["--model", "mlp:3", "--max-steps", "6", "--every", "3", "--record-layers", "fc2.weight"],
            "oialr": ["--model", "mlp:4", "--max-steps", "24", "--every", "4", "--record-layers", "fc2.weight",
                      "--oialr", "delay:8", "--oialr-every", "4", "--oialr-classifier", "--beta", "0.9"],
        }
        for name, args in runs.items():
            path = os.path.join(tmp, name + ".h5")
            subprocess.run([cli, "train", "--dataset", "synthetic", "--epochs", "1", "--batch", "64", "--quiet",
                            "--record", path] + args, check=True)
            for libver in ("latest", "earliest"):
                out = os.path.join(tmp, "%s-%s.h5" % (name, libver))
                shrink(path, out, libver)
                with open(out, "rb") as f:
                    put("traj", "%s-%s.h5" % (name, libver), f.read())
    finally:
        shutil.rmtree(tmp)


def main(argv):
    if len(argv) != 2:
        sys.exit("usage: make_seeds.py PATH/TO/oialr")
    seeds_idx()
    seeds_cifar()
    seeds_spec()
    seeds_cli()
    seeds_traj(argv[1])


if __name__ == "__main__":
    main(sys.argv)
