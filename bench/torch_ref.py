#!/usr/bin/env python3
"""PyTorch side of the Go-vs-PyTorch training benchmark (bench/compare.sh).

Loads a fixture written by `loope fixture` (weights, an input batch and its
6-bit targets), builds the same timm ViT as testdata/gen/vit_torch.py and
times full training steps: zero_grad, forward, mean BCE-with-logits,
backward, AdamW step. Prints one line: `torch images/s N steps S batch B`.

Usage: /usr/bin/python3 bench/torch_ref.py FIXTURE.safetensors STEPS [WARMUP]
Threads: torch.set_num_threads(THREADS env, default 2).
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "testdata", "gen"))
import json  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import vit_torch  # noqa: E402


def main(path, steps, warmup):
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    t, meta, _ = vit_torch.read_safetensors(path)
    cfg = json.loads(meta["config"])
    names = json.loads(meta["params"])
    buffers = set(json.loads(meta.get("buffers", "[]")))
    params = {n: torch.tensor(t[n], dtype=torch.float32, requires_grad=n not in buffers) for n in names}
    pe = vit_torch.make_pe(cfg, params)
    img = torch.tensor(t["input"], dtype=torch.float32)
    targets = torch.tensor(t["targets"], dtype=torch.float32)
    trained = [params[n] for n in names if n not in buffers]
    opt = torch.optim.AdamW(trained, lr=1e-3, weight_decay=0.05)
    for i in range(warmup + steps):
        if i == warmup:
            start = time.perf_counter()
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(vit_torch.forward(cfg, params, pe, img), targets)
        loss.backward()
        opt.step()
    dt = time.perf_counter() - start
    b = img.shape[0]
    print(f"torch images/s {steps * b / dt:.1f} steps {steps} batch {b} threads {torch.get_num_threads()}")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 2)
