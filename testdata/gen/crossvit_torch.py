#!/usr/bin/env python3
"""Independent PyTorch reference of CrossViT for Go fixtures
(`loope fixture -arch crossvit`).

Reads a fixture written by `loope fixture -arch crossvit` (timm-named weights,
`input`, `targets`, the Go values), rebuilds timm's CrossVit in plain PyTorch
(no timm import: the op order is written out below from
timm/models/crossvit.py: CrossVit.forward_features with scale_image's
F.interpolate(mode='bicubic', align_corners=False), MultiScaleBlock with
depth [d0, d1, 0], CrossAttentionBlock / CrossAttention, the mean of the two
heads; the branch blocks are timm vision_transformer Blocks), and writes a
golden file as vit_torch.py does: logits, loss, every parameter gradient,
every buffer after the training-mode forward, and the loss trace of 5 AdamW
steps. Go's TestTorchGolden compares against it.

The positional embeddings enter as in the LOOPE authors' models/crossvit.py:
pos_embed_0 and pos_embed_1 are each a PE built for that branch's tokens
(CLS row included) and width; the PE modules are vit_torch.py's, built per
branch from the branch's ViT-shaped config, with the branch's input (the
resized image on branch 1) as the image a PE reads.

Usage (Debian: apt-get install python3-torch):
    /usr/bin/python3 testdata/gen/crossvit_torch.py FIXTURE.safetensors OUT.safetensors
"""
import json
import sys

import numpy as np
import torch
import torch.nn.functional as F

import vit_torch as V


def branch_cfg(cfg, i):
    """The ViT-shaped config of branch i (Go: Config.crossBranch)."""
    b = {k: cfg[k] for k in ("image", "channels", "patch", "dim", "heads", "mlp", "classes", "eps", "pe")}
    b["depth"] = cfg["depth"] * cfg["depth_0"]
    if i == 1:
        b.update(image=cfg["image_1"], patch=cfg["patch_1"], dim=cfg["dim_1"], heads=cfg["heads_1"], mlp=cfg["mlp_1"],
                 depth=cfg["depth"] * cfg["depth_1"])
    return b


def make_branch_pes(cfg, params):
    """One PE per branch on the tensors pos_embed_i…, renamed pos_embed… for
    vit_torch's PE modules; tensors the modules adopt go back into params."""
    pes = []
    for i in range(2):
        pre = f"pos_embed_{i}"
        sub = {"pos_embed" + n[len(pre):]: t for n, t in params.items() if n.startswith(pre)}
        sub["cls_token"] = params[f"cls_token_{i}"]  # some PE modules take their dtype from any tensor
        pe = V.make_pe(branch_cfg(cfg, i), sub)
        for n, t in sub.items():
            if n.startswith("pos_embed"):
                params[pre + n[len("pos_embed"):]] = t
        pes.append(pe)
    return pes


def vit_block(p, pre, x, H, eps, pe, layer):
    """timm vision_transformer Block (vit_torch.forward's block), PE hooks at layer."""
    B, N, D = x.shape
    dh = D // H
    y = F.layer_norm(x, (D,), p[pre + "norm1.weight"], p[pre + "norm1.bias"], eps)
    if hasattr(pe, "attn_input"):  # PaPE reads the attention input
        pe.attn_input(layer, y)
    qkv = F.linear(y, p[pre + "attn.qkv.weight"], p[pre + "attn.qkv.bias"])
    q, k, v = qkv.reshape(B, N, 3, H, dh).permute(2, 0, 3, 1, 4).unbind(0)
    q, k = pe.rotate_qk(layer, q, k)
    bias = pe.attn_bias(layer, q)
    attn = (q * dh ** -0.5) @ k.transpose(-2, -1)
    if bias is not None:
        attn = attn + bias
    a = (attn.softmax(dim=-1) @ v).transpose(1, 2).reshape(B, N, D)
    x = x + F.linear(a, p[pre + "attn.proj.weight"], p[pre + "attn.proj.bias"])
    y = F.layer_norm(x, (D,), p[pre + "norm2.weight"], p[pre + "norm2.bias"], eps)
    x = x + F.linear(F.gelu(F.linear(y, p[pre + "mlp.fc1.weight"], p[pre + "mlp.fc1.bias"])),
                     p[pre + "mlp.fc2.weight"], p[pre + "mlp.fc2.bias"])
    return pe.after_block(layer, x)


def seq(p, pre, x, eps):
    """nn.Sequential(LayerNorm, GELU, Linear) of projs / revert_projs."""
    D = x.shape[-1]
    x = F.layer_norm(x, (D,), p[pre + "0.weight"], p[pre + "0.bias"], eps)
    return F.linear(F.gelu(x), p[pre + "2.weight"], p[pre + "2.bias"])


def cross_attention_block(p, pre, x, H, eps):
    """timm CrossAttentionBlock: x[:, 0:1] + CrossAttention(norm1(x))."""
    B, N, C = x.shape
    y = F.layer_norm(x, (C,), p[pre + "norm1.weight"], p[pre + "norm1.bias"], eps)
    a = pre + "attn."
    q = F.linear(y[:, 0:1, ...], p[a + "wq.weight"], p[a + "wq.bias"]).reshape(B, 1, H, C // H).permute(0, 2, 1, 3)
    k = F.linear(y, p[a + "wk.weight"], p[a + "wk.bias"]).reshape(B, N, H, C // H).permute(0, 2, 1, 3)
    v = F.linear(y, p[a + "wv.weight"], p[a + "wv.bias"]).reshape(B, N, H, C // H).permute(0, 2, 1, 3)
    attn = (q @ k.transpose(-2, -1)) * (C // H) ** -0.5
    attn = attn.softmax(dim=-1)
    o = (attn @ v).transpose(1, 2).reshape(B, 1, C)
    o = F.linear(o, p[a + "proj.weight"], p[a + "proj.bias"])
    return x[:, 0:1, ...] + o


def forward(cfg, p, pes, img):
    """timm CrossVit.forward (two branches, depth [[d0, d1, 0]] * L)."""
    B, eps = img.shape[0], cfg["eps"]
    bcs = [branch_cfg(cfg, i) for i in range(2)]
    xs = []
    for i in range(2):
        ss = (bcs[i]["image"], bcs[i]["image"])
        x_ = img
        if x_.shape[-2:] != ss:  # scale_image, crop_scale False
            x_ = torch.nn.functional.interpolate(x_, size=ss, mode='bicubic', align_corners=False)
        inp = x_
        x_ = F.conv2d(x_, p[f"patch_embed.{i}.proj.weight"], p[f"patch_embed.{i}.proj.bias"], stride=bcs[i]["patch"])
        x_ = x_.flatten(2).transpose(1, 2)
        x_ = torch.cat((p[f"cls_token_{i}"].expand(B, -1, -1), x_), dim=1)
        x_ = pes[i].add_input(x_, inp)  # x_ + pos_embed_i
        xs.append(x_)
    depths = [cfg["depth_0"], cfg["depth_1"]]
    for s in range(cfg["depth"]):
        pre = f"blocks.{s}."
        outs_b = []
        for i in range(2):
            x = xs[i]
            for k in range(depths[i]):
                x = vit_block(p, pre + f"blocks.{i}.{k}.", x, bcs[i]["heads"], eps, pes[i], s * depths[i] + k)
            outs_b.append(x)
        proj_cls_token = [seq(p, pre + f"projs.{i}.", outs_b[i][:, 0:1, ...], eps) for i in range(2)]
        outs = []
        for i in range(2):
            j = (i + 1) % 2
            tmp = torch.cat((proj_cls_token[i], outs_b[j][:, 1:, ...]), dim=1)
            tmp = cross_attention_block(p, pre + f"fusion.{i}.", tmp, bcs[j]["heads"], eps)
            reverted = seq(p, pre + f"revert_projs.{i}.", tmp[:, 0:1, ...], eps)
            outs.append(torch.cat((reverted, outs_b[i][:, 1:, ...]), dim=1))
        xs = outs
    xs = [F.layer_norm(xs[i], (bcs[i]["dim"],), p[f"norm.{i}.weight"], p[f"norm.{i}.bias"], eps) for i in range(2)]
    xs = [x[:, 0] for x in xs]
    return torch.mean(torch.stack([F.linear(xs[i], p[f"head.{i}.weight"], p[f"head.{i}.bias"]) for i in range(2)], dim=0), dim=0)


def main(fixture, out):
    t, meta, sha = V.read_safetensors(fixture)
    cfg = json.loads(meta["config"])
    if cfg.get("arch") != "crossvit":
        raise SystemExit(f"crossvit_torch.py: {fixture} is a {cfg.get('arch') or 'vit'} fixture")
    names = json.loads(meta["params"])
    no_decay = set(json.loads(meta["no_decay"]))
    buffers = set(json.loads(meta.get("buffers", "[]")))
    dtype = torch.float64 if t["input"].dtype == np.float64 else torch.float32
    params = {n: torch.tensor(t[n], dtype=dtype, requires_grad=n not in buffers) for n in names}
    names = [n for n in names if n not in buffers]
    pes = make_branch_pes(cfg, params)
    img = torch.tensor(t["input"], dtype=dtype)
    targets = torch.tensor(t["targets"], dtype=dtype if meta["loss"] == "bce" else torch.int64)

    logits = forward(cfg, params, pes, img)
    loss = V.loss_fn(meta, logits, targets)
    loss.backward()
    golden = {"logits": logits.detach().numpy(), "loss": loss.detach().numpy().reshape(())}
    for n in names:
        g = params[n].grad
        golden["grad." + n] = (g if g is not None else torch.zeros_like(params[n])).numpy().copy()
    for n in buffers:
        golden["after." + n] = params[n].detach().numpy().copy()

    for v in params.values():
        v.grad = None
    decay = [params[n] for n in names if n not in no_decay]
    nodecay = [params[n] for n in names if n in no_decay]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": V.WD}, {"params": nodecay, "weight_decay": 0.0}],
                            lr=V.LR, betas=(0.9, 0.999), eps=1e-8)
    trace = []
    for _ in range(V.ADAMW_STEPS):
        opt.zero_grad()
        l = V.loss_fn(meta, forward(cfg, params, pes, img), targets)
        l.backward()
        opt.step()
        trace.append(l.item())
    golden["adamw_trace"] = np.array(trace, dtype=np.float64)
    V.write_safetensors(out, golden, {
        "generator": "testdata/gen/crossvit_torch.py",
        "torch": torch.__version__,
        "numpy": np.__version__,
        "fixture_sha256": sha,
        "adamw": json.dumps({"steps": V.ADAMW_STEPS, "lr": V.LR, "weight_decay": V.WD, "betas": [0.9, 0.999], "eps": 1e-8}),
    })


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    main(sys.argv[1], sys.argv[2])
