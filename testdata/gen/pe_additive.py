"""Additive positional embeddings for vit_torch.py, written from the specs
(docs/paper.md §2.3-2.4, docs/pe-zoo.md §5-§10) and the LOOPE authors'
PyTorch modules, not from the Go code:

  sin1d, hilbert       frozen Vaswani sinusoid at raster / Gilbert positions (CLS at 0)
  sincos2d             MAE get_2d_sincos_pos_embed (cls_token=True)
  sincos2d-sum         LOOPE repo Sin2DPositionalEncoding (summed, [-1, 1] coordinates)
  fourier              LOOPE repo FourierPositionalEncoding (groups 1)
  loope                LOOPE repo ArtPE (nn.Sequential art_conv, state-dict names match)

Learnable PEs are real nn.Modules; their tensors replace the entries of the
shared params dict, so vit_torch.py's gradients and optimiser see them.
"""
import math

import numpy as np
import torch
import torch.nn as nn


class _Hooks:
    """Identity hooks of vit_torch.PE (duplicated to avoid a circular import)."""

    def __init__(self, cfg, params):
        self.cfg, self.p = cfg, params

    def attn_input(self, layer, y):
        pass

    def attn_bias(self, layer, q):
        return None

    def rotate_qk(self, layer, q, k):
        return q, k

    def after_block(self, i, x):
        return x


def freq_set(name, dim):
    """dim/2 frequencies: Vaswani 10000^(-2i/dim), or the revised paper's
    f1..f3 defined on i < L = dim (first dim/2 entries used)."""
    i = np.arange(dim // 2, dtype=np.float64)
    if name in ("", "vaswani"):
        return np.exp(-(2 * i) * math.log(10000.0) / dim)
    if name == "f1":
        return 0.978 ** i
    if name == "f2":
        return 1 - i * (1 - 0.0001) / (dim - 1)
    if name == "f3":
        return 0.9 ** i
    raise SystemExit(f"pe_additive.py: frequency set {name!r} not implemented")


def gilbert2d(width, height):
    """Generalized Hilbert curve (jakubcerveny/gilbert), yields (x, y)."""
    def sgn(v):
        return (v > 0) - (v < 0)

    def gen(x, y, ax, ay, bx, by):
        w, h = abs(ax + ay), abs(bx + by)
        dax, day, dbx, dby = sgn(ax), sgn(ay), sgn(bx), sgn(by)
        if h == 1:
            for _ in range(w):
                yield x, y
                x, y = x + dax, y + day
            return
        if w == 1:
            for _ in range(h):
                yield x, y
                x, y = x + dbx, y + dby
            return
        ax2, ay2, bx2, by2 = ax // 2, ay // 2, bx // 2, by // 2
        w2, h2 = abs(ax2 + ay2), abs(bx2 + by2)
        if 2 * w > 3 * h:
            if w2 % 2 and w > 2:
                ax2, ay2 = ax2 + dax, ay2 + day
            yield from gen(x, y, ax2, ay2, bx, by)
            yield from gen(x + ax2, y + ay2, ax - ax2, ay - ay2, bx, by)
        else:
            if h2 % 2 and h > 2:
                bx2, by2 = bx2 + dbx, by2 + dby
            yield from gen(x, y, bx2, by2, ax2, ay2)
            yield from gen(x + bx2, y + by2, ax, ay, bx - bx2, by - by2)
            yield from gen(x + (ax - dax) + (bx2 - dbx), y + (ay - day) + (by2 - dby),
                           -bx2, -by2, -(ax - ax2), -(ay - ay2))

    if width >= height:
        yield from gen(0, 0, width, 0, 0, height)
    else:
        yield from gen(0, 0, 0, height, width, 0)


def gilbert_grid(g):
    """(g, g) array: 1-based visit index of the cell at [row, col]."""
    arr = np.zeros((g, g), dtype=np.int64)
    for k, (x, y) in enumerate(gilbert2d(g, g)):
        arr[y, x] = k + 1
    return arr


def sinusoid(pos, freqs):
    """Interleaved table: [p, 2i] = sin(p w_i), [p, 2i+1] = cos(p w_i)."""
    a = np.outer(pos, freqs)
    out = np.empty((len(pos), 2 * len(freqs)))
    out[:, 0::2], out[:, 1::2] = np.sin(a), np.cos(a)
    return out


def grid_of(cfg):
    return cfg["image"] // cfg["patch"]


class _Fixed(_Hooks):
    """A frozen (N+1, D) table added after the CLS concat."""

    def __init__(self, cfg, params):
        super().__init__(cfg, params)
        self.table = self.build(cfg["dim"], grid_of(cfg), cfg["pe"].get("freqs", ""))

    def add_input(self, x, img):
        return x + torch.tensor(self.table, dtype=x.dtype)


class Sin1D(_Fixed):
    @staticmethod
    def build(d, g, freqs):
        return sinusoid(np.arange(g * g + 1, dtype=np.float64), freq_set(freqs, d))


class Hilbert(_Fixed):
    @staticmethod
    def build(d, g, freqs):
        pos = np.concatenate([[0.0], gilbert_grid(g).reshape(-1).astype(np.float64)])
        return sinusoid(pos, freq_set(freqs, d))


class SinCos2D(_Fixed):
    @staticmethod
    def build(d, g, freqs):
        # MAE util/pos_embed.py: grid = meshgrid(grid_w, grid_h) -> grid[0] is the column.
        omega = freq_set(freqs, d // 2)  # D/4 frequencies
        gw, gh = np.meshgrid(np.arange(g, dtype=np.float64), np.arange(g, dtype=np.float64))

        def one(p):
            o = np.outer(p.reshape(-1), omega)
            return np.concatenate([np.sin(o), np.cos(o)], axis=1)

        emb = np.concatenate([one(gw), one(gh)], axis=1)
        return np.concatenate([np.zeros((1, d)), emb], axis=0)


class SinCos2DSum(_Fixed):
    @staticmethod
    def build(d, g, freqs):
        # LOOPE models/vit_sincos2d.py: x = column, y = row, both linspace(-1, 1).
        w = freq_set(freqs, d)
        xx, yy = np.meshgrid(np.linspace(-1, 1, g), np.linspace(-1, 1, g))
        ax, ay = np.outer(xx.reshape(-1), w), np.outer(yy.reshape(-1), w)
        emb = np.empty((g * g, d))
        emb[:, 0::2] = np.sin(ax) + np.sin(ay)
        emb[:, 1::2] = np.cos(ax) + np.cos(ay)
        return np.concatenate([np.zeros((1, d)), emb], axis=0)


def _adopt(module, params, prefix):
    """Load module's tensors from params[prefix + name], then make params
    hold the module's own Parameters and buffers (so gradients, optimiser
    steps and BatchNorm running-statistic updates are shared)."""
    sd = module.state_dict(keep_vars=True)
    mine = {n for n in params if n.startswith(prefix)}
    want = {prefix + n for n in sd if not n.endswith("num_batches_tracked")}
    if mine != want:
        raise SystemExit(f"pe_additive.py: parameter names differ: fixture only {sorted(mine - want)}, module only {sorted(want - mine)}")
    with torch.no_grad():
        for n, t in sd.items():
            if prefix + n in params:
                if tuple(t.shape) != tuple(params[prefix + n].shape):
                    raise SystemExit(f"pe_additive.py: {prefix + n}: shape {tuple(params[prefix + n].shape)}, module {tuple(t.shape)}")
                t.copy_(params[prefix + n])
    for n, t in sd.items():
        if prefix + n in params:
            params[prefix + n] = t


class FourierPositionalEncoding(nn.Module):
    """LOOPE repo models/vit_fourier.py, groups = 1, any square grid."""

    def __init__(self, grid, dim, fourier_dim=768, hidden_dim=32):
        super().__init__()
        x = np.linspace(-1, 1, grid)
        y = np.linspace(-1, 1, grid)
        xx, yy = np.meshgrid(x, y)
        positions = np.stack([xx.flatten(), yy.flatten()], axis=-1)  # (N, 2), x = column
        self.register_buffer("positions", torch.tensor(positions), persistent=False)
        self.Wr = nn.Parameter(torch.randn(fourier_dim // 2, 2))
        self.fc1 = nn.Linear(fourier_dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.activation = nn.GELU()
        self.cls_embed = nn.Parameter(torch.zeros(1, dim))
        self.n, self.f = grid * grid, fourier_dim

    def forward(self):
        proj = self.positions.to(self.Wr.dtype) @ self.Wr.T  # (N, F/2)
        feat = torch.empty((self.n, self.f), dtype=proj.dtype)
        feat[:, 0::2] = torch.sin(proj)
        feat[:, 1::2] = torch.cos(proj)
        y = self.fc2(self.activation(self.fc1(feat)))
        return torch.cat([self.cls_embed, y], dim=0)  # (N+1, D)


class Fourier(_Hooks):
    def __init__(self, cfg, params):
        super().__init__(cfg, params)
        pc = cfg["pe"]
        dtype = params["pos_embed.Wr"].dtype
        self.m = FourierPositionalEncoding(grid_of(cfg), cfg["dim"], pc.get("fourier_dim") or 768,
                                           pc.get("fourier_hidden") or 32).to(dtype)
        _adopt(self.m, params, "pos_embed.")

    def add_input(self, x, img):
        return x + self.m()


class ArtPE(nn.Module):
    """LOOPE repo models/positional_encodings/art_pe.py, with the variant
    switches (activation, squashing, linear bias), input channels C + 2,
    any patch size and a frequency set."""

    def __init__(self, channels, img_size, patch_size, hidden_dim, act="gelu", squash="sigmoid", bias=False, freqs=""):
        super().__init__()
        g = img_size // patch_size
        self.register_buffer("cord", torch.stack(torch.meshgrid(
            torch.linspace(-1, 1, img_size, dtype=torch.float64),
            torch.linspace(-1, 1, img_size, dtype=torch.float64), indexing="ij")), persistent=False)
        Act = {"gelu": nn.GELU, "relu": nn.ReLU}[act]
        self.art_conv = nn.Sequential(
            nn.Conv2d(channels + 2, 32, patch_size, patch_size, 0), Act(),
            nn.Conv2d(32, 16, 5, 1, 2), Act(),
            nn.Conv2d(16, 8, 5, 1, 2), Act(),
            nn.Conv2d(8, 4, 5, 1, 2), Act(),
            nn.Conv2d(4, 1, 5, 1, 2), Act(),
            nn.BatchNorm2d(1), nn.Flatten(),
            nn.Linear(g * g, g * g, bias=bias),
            {"sigmoid": nn.Sigmoid(), "tanh": nn.Tanh()}[squash],
        )
        self.squash = squash
        self.register_buffer("wrap_pos_hilbert", torch.tensor(gilbert_grid(g), dtype=torch.float64).reshape(g * g).unsqueeze(1),
                             persistent=False)
        self.register_buffer("div_term", torch.tensor(freq_set(freqs, hidden_dim)).unsqueeze(0), persistent=False)
        self.cls_token = nn.Parameter(torch.zeros((1, hidden_dim)))
        self.n, self.d = g * g + 1, hidden_dim

    def forward(self, x):
        n = x.shape[0]
        cord = self.cord.to(x.dtype).unsqueeze(0).expand(n, -1, -1, -1)
        out = self.art_conv(torch.cat([x, cord], dim=1)).unsqueeze(2)  # (B, N, 1)
        if self.squash == "sigmoid":
            out = 2 * out - 1
        out = out + self.wrap_pos_hilbert.to(x.dtype)
        div = self.div_term.to(x.dtype)
        pe = torch.empty((n, self.n, self.d), dtype=x.dtype)
        pe[:, 1:, 0::2] = torch.sin(out * div)
        pe[:, 1:, 1::2] = torch.cos(out * div)
        pe[:, :1, :] = self.cls_token.unsqueeze(0).expand(n, -1, -1)
        return pe


class Loope(_Hooks):
    def __init__(self, cfg, params):
        super().__init__(cfg, params)
        pc = cfg["pe"]
        dtype = params["pos_embed.cls_token"].dtype
        self.m = ArtPE(cfg["channels"], cfg["image"], cfg["patch"], cfg["dim"], act=pc.get("loope_act") or "gelu",
                       squash=pc.get("loope_squash") or "sigmoid", bias=bool(pc.get("loope_bias")),
                       freqs=pc.get("freqs", "")).to(dtype)
        self.m.train()  # fixtures run a training step: BatchNorm uses batch statistics
        self.m.art_conv[10].momentum, self.m.art_conv[10].eps = 0.1, 1e-5
        _adopt(self.m, params, "pos_embed.")

    def add_input(self, x, img):
        return x + self.m(img)


PES = {
    "sin1d": Sin1D,
    "hilbert": Hilbert,
    "sincos2d": SinCos2D,
    "sincos2d-sum": SinCos2DSum,
    "fourier": Fourier,
    "loope": Loope,
}
