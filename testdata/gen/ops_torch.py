#!/usr/bin/env python3
"""Writes testdata/ops_torch.golden: PyTorch float64 outputs and gradients of
Conv2d, BatchNorm2d, LayerNorm, attention and the RoPE rotation, and of the
CNN ops (per-axis conv padding, max and average pooling, global average
pooling, bilinear resize), on inputs drawn here, for golden_ops_test.go.

Run from the repository root:  python3 testdata/gen/ops_torch.py

Format (text): a header line "# ops_torch.golden v1 torch <version>", then
per case a line "case <name> key=value ...", followed by tensors, each as a
line "tensor <tag> <ndim> <dims...>" and a line of %.17g values. Tags:
"in:<arg>" inputs, "r" the projection R of the loss L = sum(out * R),
"out" the output, "grad:<arg>" dL/d<arg>, "post:<arg>" an input after the
call (BatchNorm running statistics).
"""
import math
import os

import torch
import torch.nn.functional as F

torch.manual_seed(20260127)
torch.set_default_dtype(torch.float64)
lines = ["# ops_torch.golden v1 torch %s" % torch.__version__]


def put(tag, t):
    t = t.detach().contiguous()
    lines.append("tensor %s %d %s" % (tag, t.dim(), " ".join(str(d) for d in t.shape)))
    lines.append(" ".join("%.17g" % v for v in t.reshape(-1).tolist()))


def rand(*shape):
    return (torch.rand(*shape) * 2 - 1).requires_grad_(True)


def finish(name, params, ins, out, post=()):
    r = torch.rand(out.shape) * 2 - 1
    (out * r).sum().backward()
    lines.append("case %s %s" % (name, " ".join("%s=%r" % kv for kv in params.items())))
    for k, v in ins.items():
        put("in:" + k, v)
    put("r", r)
    put("out", out)
    for k, v in ins.items():
        if v.grad is not None:
            put("grad:" + k, v.grad)
    for k, v in post:
        put("post:" + k, v)


# Conv2d: patchify, 5x5 pad 2, depthwise 3x3 pad 1, stride 2 pad 1 groups 2.
for name, xs, ws, stride, pad, groups in [
    ("conv_patchify", (2, 3, 8, 8), (4, 3, 4, 4), 4, 0, 1),
    ("conv_5x5p2", (2, 3, 6, 5), (4, 3, 5, 5), 1, 2, 1),
    ("conv_dw3x3p1", (2, 4, 5, 5), (4, 1, 3, 3), 1, 1, 4),
    ("conv_s2p1g2", (1, 4, 7, 6), (6, 2, 3, 3), 2, 1, 2),
]:
    x, w, b = rand(*xs), rand(*ws), rand(ws[0])
    out = F.conv2d(x, w, b, stride=stride, padding=pad, groups=groups)
    finish(name, dict(stride=stride, pad=pad, groups=groups), dict(x=x, w=w, bias=b), out)

# BatchNorm2d, training (batch statistics, running update) and eval.
for name, training in [("bn_train", 1), ("bn_eval", 0)]:
    x, g, b = rand(3, 4, 3, 3), rand(4), rand(4)
    rm, rv = torch.rand(4) - 0.5, torch.rand(4) + 0.5
    ins = dict(x=x, gamma=g, beta=b, runMean=rm.clone(), runVar=rv.clone())
    out = F.batch_norm(x, rm, rv, g, b, training=bool(training), momentum=0.1, eps=1e-5)
    finish(name, dict(momentum=0.1, eps=1e-5, training=training), ins, out, [("runMean", rm), ("runVar", rv)])

# LayerNorm with timm's eps.
x, g, b = rand(3, 5, 8), rand(8), rand(8)
finish("layernorm", dict(eps=1e-6), dict(x=x, gamma=g, beta=b), F.layer_norm(x, (8,), g, b, eps=1e-6))

# Attention as timm computes it: q = q*scale; attn = q@k^T (+ bias); softmax; @v.
B, H, N, Dh = 2, 3, 5, 4
scale = Dh ** -0.5
for name, bshape in [("attn_nobias", None), ("attn_hnn", (H, N, N)), ("attn_bhnn", (B, H, N, N))]:
    q, k, v = rand(B, H, N, Dh), rand(B, H, N, Dh), rand(B, H, N, Dh)
    ins = dict(q=q, k=k, v=v)
    a = (q * scale) @ k.transpose(-2, -1)
    if bshape is not None:
        ins["bias"] = rand(*bshape)
        a = a + ins["bias"]
    out = a.softmax(dim=-1) @ v
    finish(name, dict(scale=scale), ins, out)

# RoPE rotation of adjacent pairs for tokens skip..N-1, cos/sin as leaves.
for name, hc, skip in [("rotate_shared_skip1", 1, 1), ("rotate_perhead_skip0", H, 0)]:
    x = rand(B, H, N, Dh)
    phi = torch.rand(hc, N - skip, Dh // 2) * 2 * math.pi
    c, s = phi.cos().requires_grad_(True), phi.sin().requires_grad_(True)
    xr = x[:, :, skip:]
    a, bb = xr[..., 0::2], xr[..., 1::2]
    rot = torch.stack([a * c - bb * s, a * s + bb * c], dim=-1).flatten(-2)
    out = torch.cat([x[:, :, :skip], rot], dim=2)
    finish(name, dict(skip=skip), dict(x=x, cos=c, sin=s), out)

# CNN reference-model ops (docs/cnn.md), appended after the cases above so
# that their draws, and hence their values, are unchanged.
# Conv2d with per-axis padding (Go: Conv2dHW), as Inception's 1x7 / 7x1.
for name, xs, ws, stride, ph, pw in [
    ("convhw_1x7p03", (2, 3, 5, 9), (4, 3, 1, 7), 1, 0, 3),
    ("convhw_7x1p30s2", (1, 3, 9, 5), (4, 3, 7, 1), 2, 3, 0),
]:
    x, w, b = rand(*xs), rand(*ws), rand(ws[0])
    out = F.conv2d(x, w, b, stride=stride, padding=(ph, pw))
    finish(name, dict(stride=stride, padh=ph, padw=pw), dict(x=x, w=w, bias=b), out)

# Max pooling (-inf padding, floor mode) and average pooling with and
# without the padding in the divisor.
for name, xs, k, stride, pad in [("maxpool_k3s2p1", (2, 3, 7, 6), 3, 2, 1), ("maxpool_k3s2p0", (1, 2, 9, 9), 3, 2, 0)]:
    x = rand(*xs)
    finish(name, dict(kernel=k, stride=stride, pad=pad), dict(x=x), F.max_pool2d(x, k, stride, pad))
for name, xs, k, stride, pad, cip in [
    ("avgpool_k3s1p1_countpad", (2, 3, 5, 6), 3, 1, 1, 1),
    ("avgpool_k3s1p1_nocountpad", (2, 3, 5, 6), 3, 1, 1, 0),
    ("avgpool_k3s2p1_nocountpad", (1, 2, 7, 6), 3, 2, 1, 0),
]:
    x = rand(*xs)
    out = F.avg_pool2d(x, k, stride, pad, count_include_pad=bool(cip))
    finish(name, dict(kernel=k, stride=stride, pad=pad, countpad=cip), dict(x=x), out)

# nn.AdaptiveAvgPool2d((1, 1)) then flatten(1) (Go: GlobalAvgPool2d).
x = rand(2, 3, 3, 4)
finish("gap", dict(), dict(x=x), F.adaptive_avg_pool2d(x, (1, 1)).flatten(1))

# Bilinear resize, align_corners=False, no antialias (Go: ResizeBilinear).
for name, xs, oh, ow in [("resize_up", (1, 2, 5, 4), 11, 9), ("resize_down", (2, 1, 7, 9), 4, 5), ("resize_7to38", (1, 1, 7, 7), 38, 38)]:
    x = rand(*xs)
    out = F.interpolate(x, size=(oh, ow), mode="bilinear", align_corners=False)
    finish(name, dict(oh=oh, ow=ow), dict(x=x), out)

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ops_torch.golden")
with open(path, "w") as f:
    f.write("\n".join(lines) + "\n")
