"""PaPE for vit_torch.py (imported by it).

An independent PyTorch version of the Go PE in pape.go, written from
docs/pe-zoo.md §22 and the authors' code it cites:
DTU-PAS/parabolic-position-encoding pape/nn/positions/pape_naive.py
(ParabolicPositionEncoder.encode_query_key: the parabola features appended
to query and key), pape/nn/encoder.py (the encoder sees norm1(x); the whole
extended product is scaled by head_size^-0.5) and
pape/nn/image_classifier.py (positions (column+1, row+1), CLS at (0, 0),
not normalised). Parameters come from the fixture, by their Go checkpoint
names. vit_torch.forward hands the block's LayerNorm output to attn_input
and adds attn_bias after (q·scale)·kᵀ, so the bias returned here is the
extended features' product, scaled the same way; the zero padding to a
multiple of 8 adds nothing and is left out.
"""
import torch
import torch.nn.functional as F

try:
    from __main__ import PE  # vit_torch.py run as a script
except ImportError:
    from vit_torch import PE

PARABOLAS = 50


class PaPE(PE):
    def __init__(self, cfg, params):
        super().__init__(cfg, params)
        G = cfg["image"] // cfg["patch"]
        rows = torch.arange(start=1, end=G + 1)
        cols = torch.arange(start=1, end=G + 1)
        row_positions = rows.unsqueeze(1).repeat(1, G).view(-1)
        col_positions = cols.unsqueeze(0).repeat(G, 1).view(-1)
        positions = torch.stack((col_positions, row_positions), dim=-1).unsqueeze(0)
        positions = torch.cat((torch.zeros((1, 1, 2), dtype=positions.dtype), positions), dim=1)
        self.positions = positions.to(next(iter(params.values())).dtype)  # (1, N, 2)
        self.y = None

    def attn_input(self, layer, y):
        self.y = y

    @staticmethod
    def dot(x, y):
        return (x * y).sum(dim=-1, keepdim=True)

    def attn_bias(self, layer, q):
        H, K = self.cfg["heads"], PARABOLAS
        dh = self.cfg["dim"] // H
        pre = f"pos_embed.position_encoder.{layer}."
        B, N = self.y.shape[0], self.y.shape[1]
        positions = F.linear(self.positions, self.p[pre + "position.weight"])
        positions = positions.view(1, N, H, K).permute(0, 2, 1, 3)
        squared = positions.pow(2)
        positions = positions.expand(B, -1, -1, -1)
        squared = squared.expand(B, -1, -1, -1)
        ab = F.linear(self.y, self.p[pre + "ab.weight"]).view(B, N, 2, H, K).permute(2, 0, 3, 1, 4)
        a = F.softplus(ab[0])
        b = ab[1]
        ones = torch.ones((B, H, N, 1), dtype=positions.dtype)
        qx = torch.cat([self.dot(a, -squared), a, a * 2 * positions, self.dot(b, positions), b], dim=-1)
        kx = torch.cat([ones, -squared, positions, ones, -positions], dim=-1)
        return (qx @ kx.transpose(-2, -1)) * dh ** -0.5


PES = {"pape": PaPE}
