"""Attention-side and convolutional PEs for vit_torch.py (imported by it).

Independent PyTorch versions of the Go PEs in rope.go, relpos.go and cpvt.go,
written from docs/pe-zoo.md §11-§14 and the public reference code they cite:
timm beit.py gen_relative_position_index (rpe), microsoft/Cream
iRPE/DeiT-with-iRPE/irpe.py (piecewise_index, _rp_2d_product,
get_bucket_ids_2d, iRPE.forward_rpe_transpose) and rpe_vision_transformer.py
(RPEAttention), naver-ai/rope-vit models/vit_rope.py (compute_axial_cis,
compute_mixed_cis, init_t_xy, apply_rotary_emb, RoPEAttention), and the CPVT
PEG (Twins gvt.py PosCNN). Parameters come from the fixture, by their Go
checkpoint names. Hook order is vit_torch.forward's: rotate_qk on the
unscaled q, k; attn_bias(q) with that unscaled q (added after (q·scale)·kᵀ);
after_block after each block.

Deliberate differences from the reference code, all numerically neutral or
matching the Go model: the fixed RoPE angles are computed in float64 (rope-vit
uses float32) and cast to the model dtype, and the iRPE contextual gather uses
torch.gather instead of irpe.py's flattened index.
"""
import math

import torch
import torch.nn.functional as F

try:
    from __main__ import PE  # vit_torch.py run as a script
except ImportError:
    from vit_torch import PE


def _grid(cfg):
    return cfg["image"] // cfg["patch"]


def _dtype(params):
    return next(iter(params.values())).dtype


# ---- rpe: Swin index over the grid + BEiT's three CLS entries -------------

def beit_relative_position_index(G):
    """timm beit.py gen_relative_position_index for a G×G window."""
    T = (2 * G - 1) ** 2 + 3
    coords = torch.stack(torch.meshgrid(torch.arange(G), torch.arange(G), indexing="ij")).flatten(1)  # 2, G²
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0).contiguous()  # G², G², 2
    rel[:, :, 0] += G - 1
    rel[:, :, 1] += G - 1
    rel[:, :, 0] *= 2 * G - 1
    idx = torch.zeros((G * G + 1,) * 2, dtype=torch.long)
    idx[1:, 1:] = rel.sum(-1)
    idx[0, 0:] = T - 3
    idx[0:, 0] = T - 2
    idx[0, 0] = T - 1
    return idx


class RPE(PE):
    def __init__(self, cfg, params):
        super().__init__(cfg, params)
        self.idx = beit_relative_position_index(_grid(cfg))

    def attn_bias(self, layer, q):
        table = self.p[f"pos_embed.rel_pos.{layer}.relative_position_bias_table"]  # (T, H)
        N = self.idx.shape[0]
        return table[self.idx.view(-1)].view(N, N, -1).permute(2, 0, 1)  # (H, N, N)


# ---- iRPE (product method, ratio 1.9, skip 1) ------------------------------

IRPE_RATIO = 1.9


def piecewise_index(rp, alpha, beta, gamma):
    """irpe.py piecewise_index for a long tensor of offsets."""
    rp_abs = rp.abs()
    not_mask = ~(rp_abs <= alpha)
    out = rp[not_mask]
    y = (torch.sign(out) * (alpha + torch.log(out.abs() / alpha) / math.log(gamma / alpha) * (beta - alpha))
         .round().clip(max=beta)).to(torch.long)
    idx = rp.clone()
    idx[not_mask] = y
    return idx


def irpe_product_buckets(G, ratio):
    """Bucket ids (G²+1, G²+1) with the CLS bucket, and the bucket count K."""
    alpha, beta, gamma = ratio, 2 * ratio, 8 * ratio
    b = int(beta)
    S = 2 * b + 1
    rows = torch.arange(G).view(G, 1).repeat(1, G)
    cols = torch.arange(G).view(1, G).repeat(G, 1)
    pos = torch.stack([rows, cols], 2).view(G * G, 2)
    diff = pos.view(-1, 1, 2) - pos.view(1, -1, 2)
    ids = (piecewise_index(diff[:, :, 0], alpha, beta, gamma) + b) * S + \
        piecewise_index(diff[:, :, 1], alpha, beta, gamma) + b
    K = S * S + 1
    out = torch.full((G * G + 1,) * 2, K - 1, dtype=torch.long)
    out[1:, 1:] = ids
    return out, K


# The docs/pe-zoo.md §13.1 test vector, checked every time the goldens are made.
assert piecewise_index(torch.arange(-13, 14), 1.9, 3.8, 15.2).tolist() == \
    [-3] * 10 + [-2, -2, -1, 0, 1, 2, 2] + [3] * 10


class IRPEBias(PE):
    def __init__(self, cfg, params):
        super().__init__(cfg, params)
        self.ids, self.K = irpe_product_buckets(_grid(cfg), IRPE_RATIO)

    def attn_bias(self, layer, q):
        table = self.p[f"pos_embed.rpe_k.{layer}.lookup_table_bias"]  # (H, K)
        N = self.ids.shape[0]
        return table[:, self.ids.flatten()].view(-1, N, N)


class IRPECtx(PE):
    def __init__(self, cfg, params):
        super().__init__(cfg, params)
        self.ids, self.K = irpe_product_buckets(_grid(cfg), IRPE_RATIO)

    def add_input(self, x, img):
        return x + self.p["pos_embed"]

    def attn_bias(self, layer, q):
        W = self.p[f"pos_embed.rpe_k.{layer}.lookup_table_weight"]  # (1, Dh, K), shared head
        B, H, N, dh = q.shape
        qs = q * dh ** -0.5  # RPEAttention: rpe_k sees the scaled q
        lt = torch.matmul(qs, W)  # (B, H, N, K)
        return torch.gather(lt, 3, self.ids.view(1, 1, N, N).expand(B, H, N, N))


# ---- RoPE (rope-vit), CLS unrotated ----------------------------------------

def init_t_xy(G, dtype):
    t = torch.arange(G * G, dtype=dtype)
    return t % G, torch.div(t, G, rounding_mode="floor")


def apply_rope(x, cis):
    """Rotate adjacent pairs of the patch tokens x[:, :, 1:] by cis."""
    xc = torch.view_as_complex(x[:, :, 1:].reshape(*x.shape[:2], x.shape[2] - 1, -1, 2))
    out = torch.view_as_real(xc * cis).flatten(3)
    return torch.cat([x[:, :, :1], out], dim=2)


class RopeFixed(PE):
    theta = None

    def __init__(self, cfg, params):
        super().__init__(cfg, params)
        G, dh = _grid(cfg), cfg["dim"] // cfg["heads"]
        ang = self.angles(G, dh).to(torch.float64)
        cis = torch.polar(torch.ones_like(ang), ang)
        self.cis = cis.to(torch.complex64 if _dtype(params) == torch.float32 else torch.complex128)

    def rotate_qk(self, layer, q, k):
        return apply_rope(q, self.cis), apply_rope(k, self.cis)


class RopeAxial(RopeFixed):
    def angles(self, G, dh):
        """rope-vit compute_axial_cis (θ 100), as angles (G², dh/2)."""
        f = 1.0 / (100.0 ** (torch.arange(0, dh, 4, dtype=torch.float64)[: dh // 4] / dh))
        tx, ty = init_t_xy(G, torch.float64)
        return torch.cat([torch.outer(tx, f), torch.outer(ty, f)], dim=-1)


class Rope1D(RopeFixed):
    def angles(self, G, dh):
        """LLaMA precompute_freqs_cis (θ 10000) at raster positions 0…G²−1."""
        f = 1.0 / (10000.0 ** (torch.arange(0, dh, 2, dtype=torch.float64)[: dh // 2] / dh))
        return torch.outer(torch.arange(G * G, dtype=torch.float64), f)


class RopeMixed(PE):
    def __init__(self, cfg, params):
        super().__init__(cfg, params)
        self.tx, self.ty = init_t_xy(_grid(cfg), _dtype(params))

    def rotate_qk(self, layer, q, k):
        freqs = self.p["pos_embed.freqs"]  # (2, L, H·dh/2)
        L, N, H = freqs.shape[1], self.tx.shape[0], self.cfg["heads"]
        fx = (self.tx.unsqueeze(-1) @ freqs[0].unsqueeze(-2)).view(L, N, H, -1).permute(0, 2, 1, 3)
        fy = (self.ty.unsqueeze(-1) @ freqs[1].unsqueeze(-2)).view(L, N, H, -1).permute(0, 2, 1, 3)
        ang = (fx + fy)[layer]  # (H, G², dh/2)
        cis = torch.polar(torch.ones_like(ang), ang)
        return apply_rope(q, cis), apply_rope(k, cis)


# ---- CPVT PEG ---------------------------------------------------------------

class CPVT(PE):
    def after_block(self, i, x):
        if i != 0:
            return x
        B, N, D = x.shape
        G = _grid(self.cfg)
        cls, tok = x[:, :1], x[:, 1:]
        feat = tok.transpose(1, 2).reshape(B, D, G, G)
        y = F.conv2d(feat, self.p["pos_embed.peg.proj.weight"], self.p["pos_embed.peg.proj.bias"],
                     stride=1, padding=1, groups=D) + feat
        return torch.cat([cls, y.flatten(2).transpose(1, 2)], dim=1)


PES = {
    "rpe": RPE,
    "irpe": IRPEBias,
    "irpe-ctx": IRPECtx,
    "rope-axial": RopeAxial,
    "rope-mixed": RopeMixed,
    "rope-1d": Rope1D,
    "cpvt": CPVT,
}
