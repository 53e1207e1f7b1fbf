#!/usr/bin/env python3
"""Independent PyTorch reference of CaiT for Go fixtures
(`loope fixture -arch cait`).

Reads a fixture written by `loope fixture -arch cait` (timm-named weights,
`input`, `targets`, the Go values), rebuilds timm's Cait in plain PyTorch
(no timm import: the op order is written out below from timm/models/cait.py:
Cait.forward_features, LayerScaleBlock with TalkingHeadAttn,
LayerScaleBlockClassAttn with ClassAttn, non-fused attention path), and
writes a golden file as vit_torch.py does: logits, loss, every parameter
gradient, every buffer after the training-mode forward, and the loss trace of
5 AdamW steps. Go's TestTorchGolden compares against it.

The positional embedding enters as in the LOOPE authors' models/cait.py: the
PE's N-row table T (computed here as the PE's add_input on zeros, so LOOPE's
image-dependent table is one forward's) gives pos_embed = T[:, 1:] (added to
the patch tokens) and cls_token = T[:, :1]; with config cait_cls "learned",
timm's own cls_token is used. PEs that rotate q and k or bias the logits
act in the patch self-attention only (talking_head_attn); PEs with other
hooks (irpe-ctx, cpvt) are not covered (the PE modules are vit_torch.py's).

Usage (Debian: apt-get install python3-torch):
    /usr/bin/python3 testdata/gen/cait_torch.py FIXTURE.safetensors OUT.safetensors
"""
import json
import sys

import numpy as np
import torch
import torch.nn.functional as F

import vit_torch as V


def check_hooks(pe):
    """Refuse PEs whose hooks read the block input or act after blocks
    (irpe-ctx, cpvt): only add_input, rotate_qk and attn_bias are covered."""
    import pe_additive
    ident = {V.PE.__dict__[h] for h in ("attn_input", "after_block")}
    ident |= {pe_additive._Hooks.__dict__[h] for h in ("attn_input", "after_block")}
    for h in ("attn_input", "after_block"):
        for cls in type(pe).__mro__:
            if h in cls.__dict__:
                if cls.__dict__[h] not in ident:
                    raise SystemExit(f"cait_torch.py: PE {type(pe).__name__} overrides {h}; not covered here")
                break


def talking_head_attn(p, pre, x, H, scale, pe, layer):
    """timm TalkingHeadAttn.forward; an attention-side PE rotates q, k or
    biases the logits of the patch tokens, seeing the ViT's N tokens with a
    zero CLS row in front (cut off again), as Go's CaiT.patchPE."""
    B, N, C = x.shape
    qkv = F.linear(x, p[pre + "qkv.weight"], p[pre + "qkv.bias"]).reshape(B, N, 3, H, C // H).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    z = torch.zeros_like(q[:, :, :1])
    q, k = pe.rotate_qk(layer, torch.cat([z, q], 2), torch.cat([z, k], 2))
    bias = pe.attn_bias(layer, q)
    q, k = q[:, :, 1:] * scale, k[:, :, 1:]
    attn = q @ k.transpose(-2, -1)
    if bias is not None:
        attn = attn + bias[..., 1:, 1:]
    attn = F.linear(attn.permute(0, 2, 3, 1), p[pre + "proj_l.weight"], p[pre + "proj_l.bias"]).permute(0, 3, 1, 2)
    attn = attn.softmax(dim=-1)
    attn = F.linear(attn.permute(0, 2, 3, 1), p[pre + "proj_w.weight"], p[pre + "proj_w.bias"]).permute(0, 3, 1, 2)
    x = (attn @ v).transpose(1, 2).reshape(B, N, C)
    return F.linear(x, p[pre + "proj.weight"], p[pre + "proj.bias"])


def class_attn(p, pre, x, H, scale):
    """timm ClassAttn.forward (non-fused path)."""
    B, N, C = x.shape
    q = F.linear(x[:, 0], p[pre + "q.weight"], p[pre + "q.bias"]).unsqueeze(1).reshape(B, 1, H, C // H).permute(0, 2, 1, 3)
    k = F.linear(x, p[pre + "k.weight"], p[pre + "k.bias"]).reshape(B, N, H, C // H).permute(0, 2, 1, 3)
    v = F.linear(x, p[pre + "v.weight"], p[pre + "v.bias"]).reshape(B, N, H, C // H).permute(0, 2, 1, 3)
    q = q * scale
    attn = (q @ k.transpose(-2, -1)).softmax(dim=-1)
    x_cls = (attn @ v).transpose(1, 2).reshape(B, 1, C)
    return F.linear(x_cls, p[pre + "proj.weight"], p[pre + "proj.bias"])


def mlp(p, pre, x):
    """timm Mlp: fc1, GELU, fc2."""
    return F.linear(F.gelu(F.linear(x, p[pre + "fc1.weight"], p[pre + "fc1.bias"])), p[pre + "fc2.weight"], p[pre + "fc2.bias"])


def forward(cfg, p, pe, img):
    """timm Cait.forward with the authors' PE wrapper."""
    B, D, H, eps = img.shape[0], cfg["dim"], cfg["heads"], cfg["eps"]
    scale = (D // H) ** -0.5
    ln = lambda x, pre: F.layer_norm(x, (D,), p[pre + "weight"], p[pre + "bias"], eps)
    x = F.conv2d(img, p["patch_embed.proj.weight"], p["patch_embed.proj.bias"], stride=cfg["patch"])
    x = x.flatten(2).transpose(1, 2)  # (B, N-1, D)
    table = pe.add_input(torch.zeros(B, x.shape[1] + 1, D, dtype=x.dtype), img)  # the PE's N rows
    pos_embed, cls_token = table[:, 1:], table[:, :1]
    if cfg.get("cait_cls", "") == "learned":
        cls_token = p["cls_token"].expand(B, -1, -1)
    x = x + pos_embed
    for i in range(cfg["depth"]):
        pre = f"blocks.{i}."
        x = x + p[pre + "gamma_1"] * talking_head_attn(p, pre + "attn.", ln(x, pre + "norm1."), H, scale, pe, i)
        x = x + p[pre + "gamma_2"] * mlp(p, pre + "mlp.", ln(x, pre + "norm2."))
    cls_tokens = cls_token
    for i in range(cfg["class_depth"]):
        pre = f"blocks_token_only.{i}."
        u = torch.cat((cls_tokens, x), dim=1)
        cls_tokens = cls_tokens + p[pre + "gamma_1"] * class_attn(p, pre + "attn.", ln(u, pre + "norm1."), H, scale)
        cls_tokens = cls_tokens + p[pre + "gamma_2"] * mlp(p, pre + "mlp.", ln(cls_tokens, pre + "norm2."))
    x = torch.cat((cls_tokens, x), dim=1)
    x = ln(x, "norm.")
    return F.linear(x[:, 0], p["head.weight"], p["head.bias"])


def main(fixture, out):
    t, meta, sha = V.read_safetensors(fixture)
    cfg = json.loads(meta["config"])
    if cfg.get("arch") != "cait":
        raise SystemExit(f"cait_torch.py: {fixture} is a {cfg.get('arch') or 'vit'} fixture")
    names = json.loads(meta["params"])
    no_decay = set(json.loads(meta["no_decay"]))
    buffers = set(json.loads(meta.get("buffers", "[]")))
    dtype = torch.float64 if t["input"].dtype == np.float64 else torch.float32
    params = {n: torch.tensor(t[n], dtype=dtype, requires_grad=n not in buffers) for n in names}
    names = [n for n in names if n not in buffers]
    pe = V.make_pe(cfg, params)
    check_hooks(pe)
    img = torch.tensor(t["input"], dtype=dtype)
    targets = torch.tensor(t["targets"], dtype=dtype if meta["loss"] == "bce" else torch.int64)

    logits = forward(cfg, params, pe, img)
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
        l = V.loss_fn(meta, forward(cfg, params, pe, img), targets)
        l.backward()
        opt.step()
        trace.append(l.item())
    golden["adamw_trace"] = np.array(trace, dtype=np.float64)
    V.write_safetensors(out, golden, {
        "generator": "testdata/gen/cait_torch.py",
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
