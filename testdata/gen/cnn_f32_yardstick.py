#!/usr/bin/env python3
"""How closely can two correct float32 CNNs agree? The yardstick behind
the float32 gradient tolerance of cnn_golden_test.go (docs/cnn.md).

For a float32 fixture of `loope fixture -arch resnet50|inception3` (without
-f64), it runs torchvision in float32 and in float64 on the fixture's
weights (float32 values, widened), first on the fixture's own input, then
on TRIALS further N(0, 1) inputs (numpy seed 0), and prints for each the
largest and the median, over parameters, of the relative gradient
difference float32 vs float64 (cnn_torchvision.rel: max |a - b| / max |b|
per tensor). For the fixture's input it also prints Go's float32 gradients
(the fixture's grad.*) against torchvision's float64.

Usage (Debian python3-torch, python3-torchvision), from testdata/gen:
    /usr/bin/python3 cnn_f32_yardstick.py FIXTURE.safetensors [TRIALS, default 6]
"""
import json
import sys

import numpy as np
import torch

from cnn_torchvision import rel, run
from vit_torch import read_safetensors


def grad_errors(p32, p64, names):
    errs = sorted((rel(p32(n), p64[n].grad.numpy()), n) for n in names)
    return errs[-1], float(np.median([e for e, _ in errs]))


def main(fixture, trials):
    t, meta, _ = read_safetensors(fixture)
    if t["input"].dtype != np.float32:
        sys.exit("cnn_f32_yardstick.py: want a float32 fixture (made without -f64)")
    cfg = json.loads(meta["config"])
    buffers = set(json.loads(meta.get("buffers", "[]")))
    names = [n for n in json.loads(meta["params"]) if n not in buffers]
    allnames = json.loads(meta["params"])
    rng = np.random.default_rng(0)
    for trial in range(trials + 1):
        t2 = dict(t)
        if trial > 0:
            t2["input"] = rng.standard_normal(t["input"].shape).astype(np.float32)
        _, _, p32, _ = run(cfg, meta, t2, allnames, torch.float32)
        _, _, p64, _ = run(cfg, meta, t2, allnames, torch.float64)
        (worst, wn), med = grad_errors(lambda n: p32[n].grad.numpy(), p64, names)
        what = "fixture input" if trial == 0 else f"random input {trial}"
        print(f"{what}: torchvision float32 vs float64 gradients: max {worst:.3g} ({wn}), median {med:.3g}")
        if trial == 0:
            (gw, gn), gmed = grad_errors(lambda n: t["grad." + n], p64, names)
            print(f"{what}: Go float32 vs torchvision float64 gradients: max {gw:.3g} ({gn}), median {gmed:.3g}")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) == 3 else 6)
