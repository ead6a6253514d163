#!/usr/bin/python3
"""peer_analyze.py — the numpy + h5py peer of `oialr analyze` for the benchmark.

Run by tests/bench/section_analyze.sh (see the top of that script); by hand:

    /usr/bin/python3 tests/bench/peer_analyze.py RUN.h5 [--lag K] [--beta B] [--csv OUT.csv]

Computes what `oialr analyze` computes for stability and spectra, the plain way:
per layer and snapshot, the tall-oriented W (m x n, m >= n), a thin SVD with
numpy.linalg.svd (float32, as stored; numpy's LAPACK with its default threads),
Q = U Vt, S = tr(Q_a^T Q_b)/n against the snapshot K back, the singular values,
sigma_1, Frobenius norm, stable rank, effective rank, cutoff rank r_beta, its
parameter share and the condition number. Principal angles are not computed
(`oialr analyze --no-angles` is the like-for-like comparison).
Prints "seconds=..." (the whole analysis, including reading) and, with --csv,
writes layer,step,stability,sigma1,cutoff_rank for checking the numbers.
"""

import argparse
import sys
import time

import h5py
import numpy as np


def spectrum(s, m, n, beta):
    s1 = float(s[0])
    if s1 == 0.0:
        return dict(sigma1=0.0, frobenius=0.0, stable_rank=0.0, effective_rank=0.0,
                    cutoff_rank=0, param_share=0.0, condition=float("nan"))
    s64 = s.astype(np.float64)
    x = s64 / s1
    p = s64 / s64.sum()
    p = p[p > 0]
    k = int(np.count_nonzero(s64 >= beta * s1))
    return dict(sigma1=s1, frobenius=s1 * float(np.sqrt(np.sum(x * x))), stable_rank=float(np.sum(x * x)),
                effective_rank=float(np.exp(-np.sum(p * np.log(p)))), cutoff_rank=k,
                param_share=k * (m + n + k) / (m * n),
                condition=s1 / float(s64[-1]) if s64[-1] > 0 else float("inf"))


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("traj")
    ap.add_argument("--lag", type=int, default=1)
    ap.add_argument("--beta", type=float, default=0.15)
    ap.add_argument("--csv")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    rows = []
    with h5py.File(a.traj, "r", locking=False) as f:
        for name in f["layers"]:
            g = f["layers"][name]
            w = g["weight"]
            steps = g["step"][...]
            T = len(steps)
            ring = [None] * (a.lag + 1)
            for j in range(T):
                W = w[j]
                if W.shape[0] < W.shape[1]:
                    W = W.T
                m, n = W.shape
                if not np.all(np.isfinite(W)):
                    ring[j % (a.lag + 1)] = None
                    continue
                U, s, Vt = np.linalg.svd(W, full_matrices=False)
                Q = U @ Vt
                ring[j % (a.lag + 1)] = Q
                sp = spectrum(s, m, n, a.beta)
                S = float("nan")
                if j >= a.lag:
                    Qa = ring[(j - a.lag) % (a.lag + 1)]
                    if Qa is not None:
                        S = float(np.sum(Qa * Q, dtype=np.float64)) / n
                rows.append((name, int(steps[j]), S, sp["sigma1"], sp["cutoff_rank"]))
    secs = time.perf_counter() - t0
    if a.csv:
        with open(a.csv, "w") as out:
            out.write("layer,step,stability,sigma1,cutoff_rank\n")
            for r in rows:
                out.write("%s,%d,%.9g,%.9g,%d\n" % r)
    print("seconds=%.4f snapshots=%d" % (secs, len(rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
