"""idx.py — read IDX files (MNIST, Fashion-MNIST; plain or .gz) with numpy,
for the PyTorch peers of the benchmarks (peer_mlp.py, peer_models.py)."""
import gzip
import os

import numpy as np


def read_idx(path):
    """An IDX file (plain or .gz) as a numpy array."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 8:
        raise ValueError("%s: not a uint8 IDX file" % path)
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def find(data_dir, stem):
    """data_dir/stem.gz or data_dir/stem."""
    for name in (stem + ".gz", stem):
        p = os.path.join(data_dir, name)
        if os.path.exists(p):
            return p
    raise FileNotFoundError("%s/%s[.gz] not found (apt-get install dataset-fashion-mnist)" % (data_dir, stem))


def load_normalised(data_dir):
    """Fashion-MNIST training images as float32 [N, 784], normalised to mean 0
    and std 1 over the whole set (as oialr's loader does), and int64 labels."""
    x = read_idx(find(data_dir, "train-images-idx3-ubyte"))
    y = read_idx(find(data_dir, "train-labels-idx1-ubyte"))
    if x.shape[0] != y.shape[0]:
        raise ValueError("image/label count mismatch")
    xf = x.reshape(x.shape[0], -1).astype(np.float32) / 255.0
    xf = (xf - float(xf.mean())) / float(xf.std())
    return xf, y.astype(np.int64)
