#!/usr/bin/env python3
"""Independent PyTorch reference for Go fixtures (`loope fixture`).

Reads a fixture written by `loope fixture` (safetensors: timm-named weights,
`input`, `targets`, and the Go values `logits`, `loss`, `grad.<param>`),
rebuilds the same timm ViT in plain PyTorch (no timm import: the op order is
written out below from timm/models/vision_transformer.py), and writes a golden
file with PyTorch's logits, loss, every parameter gradient, every buffer after
the training-mode forward (`after.<name>`, e.g. BatchNorm running statistics), and the loss trace
of 5 AdamW steps (lr 1e-3, betas 0.9/0.999, eps 1e-8, weight decay 0.05 on
weights only). Go's TestTorchGolden compares against it; CI needs no Python.

Usage (Debian: apt-get install python3-torch):
    /usr/bin/python3 testdata/gen/vit_torch.py FIXTURE.safetensors OUT.safetensors
"""
import hashlib
import json
import math
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32, "U8": np.uint8}
ADAMW_STEPS, LR, WD = 5, 1e-3, 0.05


def read_safetensors(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out = {}
    for name, e in header.items():
        b, en = e["data_offsets"]
        arr = np.frombuffer(raw[base + b:base + en], dtype=DTYPES[e["dtype"]])
        out[name] = arr.reshape(e["shape"]).copy()
    return out, meta, hashlib.sha256(raw).hexdigest()


def write_safetensors(path, tensors, meta):
    header, offset, blobs = {}, 0, []
    inv = {np.dtype(v): k for k, v in DTYPES.items()}
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        b = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": inv[a.dtype], "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    header["__metadata__"] = meta
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


class PE:
    """Base positional embedding: one method per hook of Go's PosEmb
    interface, each the identity. Subclasses override what they use."""

    def __init__(self, cfg, params):
        self.cfg, self.p = cfg, params

    def add_input(self, x, img):
        return x

    def attn_input(self, layer, y):
        pass

    def attn_bias(self, layer, q):
        return None

    def rotate_qk(self, layer, q, k):
        return q, k

    def after_block(self, i, x):
        return x


class Learnable(PE):
    def add_input(self, x, img):
        return x + self.p["pos_embed"]


# PES maps Go registry names to PE classes. PE families live in their own
# modules next to this file and add themselves here.
PES = {"none": PE, "learnable": Learnable}
for _mod in ("pe_additive", "pe_attention", "pe_rotation", "pe_pape"):
    try:
        PES.update(__import__(_mod).PES)
    except ModuleNotFoundError as e:
        if e.name != _mod:
            raise


def make_pe(cfg, params):
    name = cfg["pe"]["name"]
    if name not in PES:
        raise SystemExit(f"vit_torch.py: PE {name!r} not implemented (have {sorted(PES)})")
    return PES[name](cfg, params)


def forward(cfg, p, pe, img):
    """timm VisionTransformer.forward, non-fused attention path."""
    B, D, H = img.shape[0], cfg["dim"], cfg["heads"]
    dh, eps = D // H, cfg["eps"]
    x = F.conv2d(img, p["patch_embed.proj.weight"], p["patch_embed.proj.bias"], stride=cfg["patch"])
    x = x.flatten(2).transpose(1, 2)
    x = torch.cat([p["cls_token"].expand(B, -1, -1), x], dim=1)
    x = pe.add_input(x, img)
    N = x.shape[1]
    scale = dh ** -0.5
    for i in range(cfg["depth"]):
        pre = f"blocks.{i}."
        y = F.layer_norm(x, (D,), p[pre + "norm1.weight"], p[pre + "norm1.bias"], eps)
        pe.attn_input(i, y)
        qkv = F.linear(y, p[pre + "attn.qkv.weight"], p[pre + "attn.qkv.bias"])
        q, k, v = qkv.reshape(B, N, 3, H, dh).permute(2, 0, 3, 1, 4).unbind(0)
        q, k = pe.rotate_qk(i, q, k)
        bias = pe.attn_bias(i, q)
        q = q * scale
        attn = q @ k.transpose(-2, -1)
        if bias is not None:
            attn = attn + bias
        attn = attn.softmax(dim=-1)
        a = (attn @ v).transpose(1, 2).reshape(B, N, D)
        x = x + F.linear(a, p[pre + "attn.proj.weight"], p[pre + "attn.proj.bias"])
        y = F.layer_norm(x, (D,), p[pre + "norm2.weight"], p[pre + "norm2.bias"], eps)
        y = F.linear(F.gelu(F.linear(y, p[pre + "mlp.fc1.weight"], p[pre + "mlp.fc1.bias"])),
                     p[pre + "mlp.fc2.weight"], p[pre + "mlp.fc2.bias"])
        x = x + y
        x = pe.after_block(i, x)
    x = F.layer_norm(x, (D,), p["norm.weight"], p["norm.bias"], eps)
    return F.linear(x[:, 0], p["head.weight"], p["head.bias"])


def loss_fn(meta, logits, targets):
    if meta["loss"] == "bce":
        return F.binary_cross_entropy_with_logits(logits, targets)
    return F.cross_entropy(logits, targets.long(), label_smoothing=float(meta.get("smoothing", "0")))


def main(fixture, out):
    t, meta, sha = read_safetensors(fixture)
    cfg = json.loads(meta["config"])
    names = json.loads(meta["params"])
    no_decay = set(json.loads(meta["no_decay"]))
    buffers = set(json.loads(meta.get("buffers", "[]")))
    dtype = torch.float64 if t["input"].dtype == np.float64 else torch.float32
    params = {n: torch.tensor(t[n], dtype=dtype, requires_grad=n not in buffers) for n in names}
    names = [n for n in names if n not in buffers]  # the trained ones
    pe = make_pe(cfg, params)
    img = torch.tensor(t["input"], dtype=dtype)
    targets = torch.tensor(t["targets"], dtype=dtype if meta["loss"] == "bce" else torch.int64)

    logits = forward(cfg, params, pe, img)
    loss = loss_fn(meta, logits, targets)
    loss.backward()
    golden = {"logits": logits.detach().numpy(), "loss": loss.detach().numpy().reshape(())}
    for n in names:
        golden["grad." + n] = params[n].grad.numpy().copy()
    for n in buffers:  # after the training-mode forward (BatchNorm running statistics)
        golden["after." + n] = params[n].detach().numpy().copy()

    # Loss trace of AdamW steps from the same start.
    for v in params.values():
        v.grad = None
    decay = [params[n] for n in names if n not in no_decay]
    nodecay = [params[n] for n in names if n in no_decay]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WD}, {"params": nodecay, "weight_decay": 0.0}],
                            lr=LR, betas=(0.9, 0.999), eps=1e-8)
    trace = []
    for _ in range(ADAMW_STEPS):
        opt.zero_grad()
        l = loss_fn(meta, forward(cfg, params, pe, img), targets)
        l.backward()
        opt.step()
        trace.append(l.item())
    golden["adamw_trace"] = np.array(trace, dtype=np.float64)
    write_safetensors(out, golden, {
        "generator": "testdata/gen/vit_torch.py",
        "torch": torch.__version__,
        "numpy": np.__version__,
        "fixture_sha256": sha,
        "adamw": json.dumps({"steps": ADAMW_STEPS, "lr": LR, "weight_decay": WD, "betas": [0.9, 0.999], "eps": 1e-8}),
    })


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    main(sys.argv[1], sys.argv[2])
