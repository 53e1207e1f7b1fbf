#!/usr/bin/env python3
"""Small timm-named ViT checkpoint and its PyTorch goldens (Go: pretrained_test.go).

Writes two files:

  testdata/timm_tiny.safetensors         a state dict with the names and shapes of
                                         timm's VisionTransformer (vit_*_patch16_*:
                                         class token, learnable pos_embed, qkv bias,
                                         final norm, 1000-class head), random float32
                                         weights; metadata {"format": "pt"}, as timm's own files.
  testdata/timm_tiny.golden.safetensors  what PyTorch computes from it:
    input (2,3,64,64), logits (2,1000)     forward at the native 64 px (grid 4);
    resample.G.aaA (1, 1+G*G, D)           pos_embed resampled to grid G in {3,7}, A in
                                           {0,1}: CLS row kept apart, F.interpolate(
                                           mode='bicubic', align_corners=False,
                                           antialias=A) on the (1,D,4,4) map, as timm's
                                           resample_abs_pos_embed (timm/layers/pos_embed.py),
                                           in float32 as timm; *.f64: the same in float64;
    input48 (1,3,48,48), logits48 (1,1000) forward at 48 px (grid 3) with the pos_embed
                                           resampled as timm does by default (antialias);
    patch.P.aaA.f64 (2,3,P,P)              the first two output channels of the patch
                                           embedding resampled to patch P in {4,24} as
                                           timm's resample_patch_embed (pinv of the
                                           bicubic resize, antialias A), in float64;
    input20p4 (1,3,20,20), logits20p4      forward with patch 4 at 20 px (grid 5): patch
                                           embedding and pos_embed resampled (antialias).

The forward is the plain-torch timm op order of vit_torch.py (imported; no timm).
Shape: D 32, depth 2, heads 2 (not in the shapes), MLP 128, patch 16, image 64, so
the files stay small (< 1 MB). pos_embed is drawn N(0, 0.5^2) rather than timm's
N(0, 0.02^2) so the resampling golden has values of order one.

Usage (Debian: apt-get install python3-torch), from the repo root:
    /usr/bin/python3 testdata/gen/timm_ckpt.py
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vit_torch import Learnable, forward, write_safetensors  # noqa: E402

D, DEPTH, HEADS, MLP, PATCH, IMAGE, CLASSES, EPS = 32, 2, 2, 128, 16, 64, 1000, 1e-6
SEED = 2504


def state_dict(g):
    """timm VisionTransformer.state_dict() names and shapes, random values."""
    def r(*shape, std=0.05):
        return (torch.randn(*shape, generator=g) * std).float()

    grid = IMAGE // PATCH
    sd = {
        "cls_token": r(1, 1, D, std=0.5),
        "pos_embed": r(1, 1 + grid * grid, D, std=0.5),
        "patch_embed.proj.weight": r(D, 3, PATCH, PATCH),
        "patch_embed.proj.bias": r(D),
    }
    for i in range(DEPTH):
        p = f"blocks.{i}."
        sd[p + "norm1.weight"] = 1 + r(D, std=0.1)
        sd[p + "norm1.bias"] = r(D)
        sd[p + "attn.qkv.weight"] = r(3 * D, D, std=0.2)
        sd[p + "attn.qkv.bias"] = r(3 * D)
        sd[p + "attn.proj.weight"] = r(D, D, std=0.2)
        sd[p + "attn.proj.bias"] = r(D)
        sd[p + "norm2.weight"] = 1 + r(D, std=0.1)
        sd[p + "norm2.bias"] = r(D)
        sd[p + "mlp.fc1.weight"] = r(MLP, D, std=0.2)
        sd[p + "mlp.fc1.bias"] = r(MLP)
        sd[p + "mlp.fc2.weight"] = r(D, MLP, std=0.1)
        sd[p + "mlp.fc2.bias"] = r(D)
    sd["norm.weight"] = 1 + r(D, std=0.1)
    sd["norm.bias"] = r(D)
    sd["head.weight"] = r(CLASSES, D, std=0.2)
    sd["head.bias"] = r(CLASSES)
    return sd


def resample(pos_embed, new_grid, antialias):
    """timm resample_abs_pos_embed with num_prefix_tokens=1."""
    old = int(round((pos_embed.shape[1] - 1) ** 0.5))
    prefix, grid = pos_embed[:, :1], pos_embed[:, 1:]
    grid = grid.reshape(1, old, old, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=(new_grid, new_grid), mode="bicubic", align_corners=False, antialias=antialias)
    grid = grid.permute(0, 2, 3, 1).reshape(1, -1, pos_embed.shape[-1])
    return torch.cat([prefix, grid], dim=1)


def resample_patch(weight, new, antialias=True):
    """timm resample_patch_embed (timm/layers/patch_embed.py, FlexiViT's
    pseudo-inverse resize): new kernel = pinv(R) @ old kernel, where row i of
    R is the bicubic resize of the i-th old basis kernel."""
    old = weight.shape[-1]
    mat = []
    for i in range(old * old):
        basis = torch.zeros(old * old, dtype=weight.dtype)
        basis[i] = 1.0
        mat.append(F.interpolate(basis.reshape(1, 1, old, old), size=(new, new), mode="bicubic",
                                 align_corners=False, antialias=antialias).reshape(-1))
    pinv = torch.linalg.pinv(torch.stack(mat))  # (new², old²)
    flat = weight.reshape(-1, old * old)
    return (flat @ pinv.T).reshape(*weight.shape[:2], new, new)


def logits(sd, image, img, patch=PATCH):
    cfg = {"dim": D, "heads": HEADS, "eps": EPS, "patch": patch, "depth": DEPTH}
    p = dict(sd)
    if patch != PATCH:
        p["patch_embed.proj.weight"] = resample_patch(sd["patch_embed.proj.weight"], patch)
    grid = image // patch
    p["pos_embed"] = resample(sd["pos_embed"], grid, True) if grid != IMAGE // PATCH else sd["pos_embed"]
    with torch.no_grad():
        return forward(cfg, p, Learnable(cfg, p), img)


def main(root):
    g = torch.Generator().manual_seed(SEED)
    sd = state_dict(g)
    x64 = torch.randn(2, 3, IMAGE, IMAGE, generator=g)
    x48 = torch.randn(1, 3, 48, 48, generator=g)
    x20 = torch.randn(1, 3, 20, 20, generator=g)
    golden = {
        "input": x64.numpy(), "logits": logits(sd, IMAGE, x64).numpy(),
        "input48": x48.numpy(), "logits48": logits(sd, 48, x48).numpy(),
        "input20p4": x20.numpy(), "logits20p4": logits(sd, 20, x20, patch=4).numpy(),
    }
    for new in (4, 24):
        for aa in (0, 1):
            w = resample_patch(sd["patch_embed.proj.weight"].double(), new, bool(aa))
            golden[f"patch.{new}.aa{aa}.f64"] = w[:2].numpy()  # two output channels suffice
    for grid in (3, 7):
        for aa in (0, 1):
            golden[f"resample.{grid}.aa{aa}"] = resample(sd["pos_embed"], grid, bool(aa)).numpy()
            golden[f"resample.{grid}.aa{aa}.f64"] = resample(sd["pos_embed"].double(), grid, bool(aa)).numpy()
    write_safetensors(os.path.join(root, "timm_tiny.safetensors"), {k: v.numpy() for k, v in sd.items()}, {"format": "pt"})
    write_safetensors(os.path.join(root, "timm_tiny.golden.safetensors"), golden, {
        "generator": "testdata/gen/timm_ckpt.py",
        "torch": torch.__version__,
        "numpy": np.__version__,
        "seed": str(SEED),
        "model": f"dim {D} depth {DEPTH} heads {HEADS} mlp {MLP} patch {PATCH} image {IMAGE} classes {CLASSES} eps {EPS}",
    })


if __name__ == "__main__":
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    main(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
