#!/usr/bin/env python3
"""torchvision reference for the CNN fixtures (`loope fixture -arch resnet50`
or `-arch inception3`; docs/cnn.md).

Reads a fixture written by `loope fixture` (safetensors: torchvision-named
weights, `input`, `targets`, and Go's `logits`, `loss`, `grad.<param>`,
`after.<buffer>`), builds the model from torchvision itself
(torchvision.models.resnet50 / Inception3) with the same adaptations as Go
(the small stem: conv1 = 3x3 stride 1 padding 1 and maxpool = Identity; for
Inception aux_logits=False, transform_input=False, dropout 0 and the input
resized bilinearly to 75 px when smaller), loads the fixture's weights,
runs one training-mode forward (BatchNorm on batch statistics, running
statistics updated), the fixture's loss and backward, and writes a compact
golden, since the full fixture (23.5M / 21.8M parameters) is too large to
commit:

  logits (B, K), loss ()             PyTorch's values, in the fixture's dtype widened to float64
  proj.grad.<param>  (4,)            projections of each parameter gradient
  proj.after.<buffer> (4,)           projections of each buffer after the forward
  metadata weights_sha256            SHA-256 of the initial weights: the raw little-endian
                                     bytes of every tensor of the `params` list, in order
  metadata config, seed, batch, loss, smoothing, dtype: what Go rebuilds the fixture from

Projection scheme (cnn_golden_test.go computes the same from Go's tensors):
for a tensor v of n values in row-major order, widened to float64,
[sum v, sum |v|, sum v^2, sum r_i v_i], where r_i in [-1, 1) is
splitmix64(i) >> 11 scaled by 2^-52 minus 1, splitmix64 being
  z = i + 0x9E3779B97F4A7C15 (mod 2^64)
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
  z = (z ^ (z >> 27)) * 0x94D049BB133111EB
  z ^ (z >> 31)
The script also prints the largest relative difference between Go's
fixture values and PyTorch's (logits, loss, gradients, buffers).
cnn_f32_yardstick.py measures how far float32 can agree at all.

Usage (Debian python3-torch, python3-torchvision):
    /usr/bin/python3 testdata/gen/cnn_torchvision.py FIXTURE.safetensors OUT.golden.safetensors
"""
import hashlib
import json
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

from vit_torch import loss_fn, read_safetensors, write_safetensors

SMALL_STEM_BELOW = 64  # Go: smallStemBelow
INCEPTION_MIN = 75     # Go: inceptionMinImage


def splitmix_r(n):
    """r_i of the projection scheme for i = 0..n-1, as float64."""
    with np.errstate(over="ignore"):
        z = np.arange(n, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0 ** -52 - 1.0


def project(v):
    v = np.asarray(v, dtype=np.float64).reshape(-1)
    return np.array([v.sum(), np.abs(v).sum(), (v * v).sum(), splitmix_r(v.size) @ v], dtype=np.float64)


def stem_of(cfg):
    s = cfg.get("stem", "")
    if s == "":
        return "small" if cfg["image"] < SMALL_STEM_BELOW else "imagenet"
    return s


def build(cfg):
    arch, C, K = cfg["arch"], cfg["channels"], cfg["classes"]
    if arch == "resnet50":
        m = torchvision.models.resnet50(num_classes=K)
        if stem_of(cfg) == "small":
            m.conv1 = nn.Conv2d(C, 64, kernel_size=3, stride=1, padding=1, bias=False)
            m.maxpool = nn.Identity()
        elif C != 3:
            m.conv1 = nn.Conv2d(C, 64, kernel_size=7, stride=2, padding=3, bias=False)
        return m, lambda x: m(x)
    if arch == "inception3":
        m = torchvision.models.Inception3(num_classes=K, aux_logits=False, transform_input=False,
                                          init_weights=True, dropout=0.0)
        if C != 3:
            m.Conv2d_1a_3x3 = torchvision.models.inception.BasicConv2d(C, 32, kernel_size=3, stride=2)

        def fwd(x):
            if x.shape[-1] < INCEPTION_MIN:
                x = F.interpolate(x, size=(INCEPTION_MIN, INCEPTION_MIN), mode="bilinear", align_corners=False)
            return m(x)
        return m, fwd
    raise SystemExit(f"cnn_torchvision.py: unknown arch {arch!r}")


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


def run(cfg, meta, t, names, dtype):
    """One training-mode forward and backward of torchvision's model in
    dtype on the fixture's weights and input: logits, loss, parameters
    (with .grad) and buffers (after the forward)."""
    model, fwd = build(cfg)
    model = model.to(dtype)
    sd = {n: torch.tensor(t[n], dtype=dtype) for n in names}
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise SystemExit(f"cnn_torchvision.py: state dict mismatch: missing {missing}, unexpected {unexpected}")
    model.train()
    img = torch.tensor(t["input"], dtype=dtype)
    targets = torch.tensor(t["targets"], dtype=dtype if meta["loss"] == "bce" else torch.int64)
    logits = fwd(img)
    loss = loss_fn(meta, logits, targets)
    loss.backward()
    return logits, loss, dict(model.named_parameters()), dict(model.named_buffers())


def main(fixture, out):
    t, meta, sha = read_safetensors(fixture)
    cfg = json.loads(meta["config"])
    names = json.loads(meta["params"])
    buffers = set(json.loads(meta.get("buffers", "[]")))
    f64 = t["input"].dtype == np.float64
    dtype = torch.float64 if f64 else torch.float32
    h = hashlib.sha256()
    for n in names:
        h.update(np.ascontiguousarray(t[n]).astype(t[n].dtype.newbyteorder("<")).tobytes())

    logits, loss, params, bufs = run(cfg, meta, t, names, dtype)
    golden = {"logits": logits.detach().numpy().astype(np.float64),
              "loss": loss.detach().numpy().astype(np.float64).reshape(())}
    worst = {"logits": rel(t["logits"], golden["logits"]), "loss": rel(t["loss"], golden["loss"])}
    wg = wb = (0.0, "")
    for n in names:
        if n in buffers:
            v = bufs[n].detach().numpy()
            golden["proj.after." + n] = project(v)
            wb = max(wb, (rel(t["after." + n], v), n))
        else:
            v = params[n].grad.numpy()
            golden["proj.grad." + n] = project(v)
            wg = max(wg, (rel(t["grad." + n], v), n))
    print(f"{fixture}: Go vs torchvision, max relative difference: logits {worst['logits']:.3g}, "
          f"loss {worst['loss']:.3g}, gradients {wg[0]:.3g} ({wg[1]}), buffers {wb[0]:.3g} ({wb[1]})")
    write_safetensors(out, golden, {
        "generator": "testdata/gen/cnn_torchvision.py",
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": np.__version__,
        "fixture_sha256": sha,
        "weights_sha256": h.hexdigest(),
        "config": meta["config"],
        "seed": meta["seed"],
        "batch": str(t["input"].shape[0]),
        "loss": meta["loss"],
        "smoothing": meta["smoothing"],
        "dtype": "float64" if f64 else "float32",
        "projection": "sum, sum|v|, sum v^2, sum r_i v_i with r_i = (splitmix64(i) >> 11)*2^-52 - 1",
    })


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    main(sys.argv[1], sys.argv[2])
