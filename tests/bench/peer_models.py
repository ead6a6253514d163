#!/usr/bin/python3
"""peer_models.py — the PyTorch CPU peers of `oialr train --model cnn` and `--model vit`.

Same architecture as oialr's default specs, layer by layer:

  cnn  (cnn:16,32,64,blocks=1, lib/model/spec_cnn.c; SGD momentum 0.9, lr 0.05)
       stem conv3x3(1->16, no bias)-BN-ReLU; per stage s (16, 32, 64; stride 2
       from the second stage on) one basic block: conv3x3(stride)-BN-ReLU-
       conv3x3-BN + skip, ReLU, where skip = x or conv1x1(stride, no bias)-BN
       when the shape changes; global average pool; Linear(64, 10).
       BatchNorm2d eps 1e-5, momentum 0.1 (oialr's BN_EPS, BN_MOMENTUM).
  vit  (vit:patch=7,dim=64,depth=4,heads=4,mlp=128,pool=cls, lib/model/spec_vit.c;
       AdamW lr 1e-3, betas 0.9/0.999, weight decay 0.01)
       patch embedding Conv2d(1, 64, 7, stride 7, bias) -> 16 tokens, class token
       prepended (token 0), learned position embedding (17 x 64); 4 pre-norm
       blocks: x += o(attention(q(LN1 x), k(LN1 x), v(LN1 x))) with separate
       Linear(64, 64) q, k, v, o (bias), 4 heads, softmax(q kᵀ/√16) v;
       x += fc2(GELU_tanh(fc1(LN2 x))) with fc1 64->128, fc2 128->64; final LN
       (eps 1e-5 everywhere), class token, Linear(64, 10).

Softmax cross-entropy, batch 128, torch.set_num_threads(THREADS). Fashion-MNIST
is read from the IDX .gz files with gzip + numpy and normalised once to a
float32 tensor; model construction and data loading are not timed. WARMUP
steps run first (not timed), then STEPS steps are timed: batch gathering by
index, forward, loss, backward, optimizer step — what oialr's samples/s on its
epoch line covers (oialr's line also includes its first, cold step and the
uint8 -> float conversion of each batch, which favours this peer).

Prints one line (tests/bench/section_models.sh parses samples_per_s=):
  peer_models model=M torch=VER threads=T warmup=W steps=S samples=N seconds=X samples_per_s=Y loss=L

usage: /usr/bin/python3 tests/bench/peer_models.py --model cnn|vit [--threads 2] [--steps 60]
       [--warmup 5] [--batch 128] [--data DIR] [--seed 0]
"""
import argparse
import math
import os
import sys
import time

import numpy as np

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    sys.stderr.write("peer_models: torch is not importable by %s (Debian package python3-torch)\n" % sys.executable)
    sys.exit(3)


from idx import load_normalised  # noqa: E402 (tests/bench/idx.py, beside this script)


# --- CNN ------------------------------------------------------------------------

BN_EPS, BN_MOMENTUM = 1e-5, 0.1


def conv_bn(cin, cout, k, stride, act):
    layers = [nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False),
              nn.BatchNorm2d(cout, eps=BN_EPS, momentum=BN_MOMENTUM)]
    if act:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1 = conv_bn(cin, cout, 3, stride, True)
        self.c2 = conv_bn(cout, cout, 3, 1, False)
        self.down = conv_bn(cin, cout, 1, stride, False) if (cin != cout or stride != 1) else None

    def forward(self, x):
        y = self.c2(self.c1(x))
        return F.relu(y + (self.down(x) if self.down is not None else x))


class CNN(nn.Module):
    def __init__(self, cin=1, widths=(16, 32, 64), blocks=1, nclass=10):
        super().__init__()
        self.stem = conv_bn(cin, widths[0], 3, 1, True)
        layers, c = [], widths[0]
        for s, w in enumerate(widths):
            for b in range(blocks):
                layers.append(Block(c, w, 2 if (s > 0 and b == 0) else 1))
                c = w
        self.stages = nn.Sequential(*layers)
        self.head = nn.Linear(c, nclass)

    def forward(self, x):
        x = self.stages(self.stem(x))
        return self.head(x.mean(dim=(2, 3)))


# --- ViT ------------------------------------------------------------------------

LN_EPS = 1e-5


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.h = heads
        self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4))

    def forward(self, x):
        B, T, D = x.shape
        hs = D // self.h
        q = self.q(x).view(B, T, self.h, hs).transpose(1, 2)
        k = self.k(x).view(B, T, self.h, hs).transpose(1, 2)
        v = self.v(x).view(B, T, self.h, hs).transpose(1, 2)
        att = torch.softmax((q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs)), dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, D)
        return self.o(y)


class TBlock(nn.Module):
    def __init__(self, dim, heads, mlp):
        super().__init__()
        self.ln1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = Attention(dim, heads)
        self.ln2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.fc1 = nn.Linear(dim, mlp)
        self.fc2 = nn.Linear(mlp, dim)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x)), approximate="tanh"))


class ViT(nn.Module):
    def __init__(self, cin=1, hw=28, patch=7, dim=64, depth=4, heads=4, mlp=128, nclass=10):
        super().__init__()
        self.patch = nn.Conv2d(cin, dim, patch, stride=patch)
        ntok = (hw // patch) ** 2 + 1
        self.cls = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos = nn.Parameter(torch.randn(1, ntok, dim) * 0.02)
        self.blocks = nn.Sequential(*[TBlock(dim, heads, mlp) for _ in range(depth)])
        self.ln = nn.LayerNorm(dim, eps=LN_EPS)
        self.head = nn.Linear(dim, nclass)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)  # B, 16, D
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        x = self.ln(self.blocks(x))
        return self.head(x[:, 0])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=("cnn", "vit"), required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=60, help="timed steps")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    # --- data (not timed) ---
    xf, y = load_normalised(args.data)
    X = torch.from_numpy(np.ascontiguousarray(xf.reshape(-1, 1, 28, 28)))
    Y = torch.from_numpy(y)

    # --- model (not timed) ---
    if args.model == "cnn":
        model = CNN()
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    else:
        model = ViT()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.999), weight_decay=0.01)
    lossf = nn.CrossEntropyLoss()
    model.train()

    n, B = X.shape[0], args.batch
    order = torch.randperm(n)
    pos = 0

    def step():
        nonlocal pos
        if pos + B > n:
            pos = 0
        idx = order[pos:pos + B]
        pos += B
        xb, yb = X[idx], Y[idx]
        out = model(xb)
        loss = lossf(out, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    for _ in range(args.warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        loss = step()
    loss_v = float(loss)
    dt = time.perf_counter() - t0
    seen = args.steps * B
    print("peer_models model=%s torch=%s threads=%d warmup=%d steps=%d samples=%d seconds=%.3f samples_per_s=%.1f loss=%.4f"
          % (args.model, torch.__version__, torch.get_num_threads(), args.warmup, args.steps, seen, dt, seen / dt,
             loss_v))
    return 0


if __name__ == "__main__":
    sys.exit(main())
