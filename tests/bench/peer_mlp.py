#!/usr/bin/python3
"""peer_mlp.py — the PyTorch CPU peer of `oialr train --model mlp:512,512`.

The same MLP 784-512-512-10 (ReLU, PyTorch default init), softmax
cross-entropy, SGD momentum 0.9, lr 0.05, batch 128, one epoch of 55000
shuffled Fashion-MNIST training samples (the last batch partial, 430 steps, as
oialr does), torch.set_num_threads(THREADS). The images are read from the
IDX .gz files with gzip + numpy and normalised once to a float32 tensor
(mean/std of the training set) before the clock starts; model construction and
data loading are not timed. Timed: the training loop of the epoch — batch
gathering by index, forward, loss, backward, optimizer step — which is what
oialr's `N samples/s` on its epoch line covers (oialr also converts uint8 to
float per batch inside that time; this peer does not, which favours the peer).

Prints one line for tests/bench/run.sh:
  peer_mlp torch=VER threads=T steps=S samples=N seconds=X samples_per_s=Y loss=L train_acc=A

usage: /usr/bin/python3 tests/bench/peer_mlp.py [--threads 2] [--data DIR] [--seed 0]
"""
import argparse
import os
import sys
import time

import numpy as np

try:
    import torch
except ImportError:
    sys.stderr.write("peer_mlp: torch is not importable by %s (Debian package python3-torch)\n" % sys.executable)
    sys.exit(3)


from idx import load_normalised  # noqa: E402 (tests/bench/idx.py, beside this script)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train", type=int, default=55000, help="training samples (the rest is oialr's validation split)")
    ap.add_argument("--batch", type=int, default=128)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    # --- data (not timed) ---
    xf, y = load_normalised(args.data)
    rng = np.random.default_rng(args.seed)
    perm = rng.permutation(xf.shape[0])[: args.train]
    X = torch.from_numpy(np.ascontiguousarray(xf[perm]))
    Y = torch.from_numpy(y[perm])

    # --- model (not timed) ---
    model = torch.nn.Sequential(
        torch.nn.Linear(784, 512), torch.nn.ReLU(),
        torch.nn.Linear(512, 512), torch.nn.ReLU(),
        torch.nn.Linear(512, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    lossf = torch.nn.CrossEntropyLoss()
    model.train()

    # --- one epoch (timed) ---
    n, B = X.shape[0], args.batch
    order = torch.randperm(n)
    steps, seen, correct, loss_v = 0, 0, 0, float("nan")
    t0 = time.perf_counter()
    for s in range(0, n, B):
        idx = order[s:s + B]
        xb, yb = X[idx], Y[idx]
        out = model(xb)
        loss = lossf(out, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        steps += 1
        seen += xb.shape[0]
        correct += int((out.argmax(1) == yb).sum())
        loss_v = float(loss)
    dt = time.perf_counter() - t0

    print("peer_mlp torch=%s threads=%d steps=%d samples=%d seconds=%.3f samples_per_s=%.1f loss=%.4f train_acc=%.4f"
          % (torch.__version__, torch.get_num_threads(), steps, seen, dt, seen / dt, loss_v, correct / seen))
    return 0


if __name__ == "__main__":
    sys.exit(main())
