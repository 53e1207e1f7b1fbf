#!/usr/bin/env bash
# Regenerates every ViT fixture (Go: `loope fixture`) and its PyTorch golden
# (testdata/gen/vit_torch.py, Debian python3-torch). Run from the repo root:
#   bash testdata/gen/fixtures.sh
# Each line: name preset pe seed batch extra-flags. Fixture files are
# testdata/fixture_<name>.safetensors, goldens *.torch.safetensors.
set -euo pipefail
go build -o /tmp/loope-fixture ./cmd/loope
while read -r name preset pe seed batch extra; do
  [ -z "$name" ] && continue
  case "$name" in \#*) continue ;; esac
  out=testdata/fixture_$name.safetensors
  /tmp/loope-fixture fixture -preset "$preset" -pe "$pe" -seed "$seed" -batch "$batch" $extra -out "$out"
  /usr/bin/python3 testdata/gen/vit_torch.py "$out" "${out%.safetensors}.torch.safetensors"
done <<'LIST'
small_learnable_f32 small learnable 1 2
small_learnable_f64 small learnable 1 2 -f64
small_none_f32 small none 1 2
small_none_f64 small none 1 2 -f64
tiny_learnable_ce_f64 tiny learnable 2 3 -f64 -classes 10 -smoothing 0.1
tiny_rpe_f64 tiny rpe 3 2 -f64 -dim 32 -depth 2 -heads 2 -mlp 64
tiny_irpe_f64 tiny irpe 3 2 -f64 -dim 32 -depth 2 -heads 2 -mlp 64
tiny_irpe_ctx_f64 tiny irpe-ctx 3 2 -f64 -dim 32 -depth 2 -heads 2 -mlp 64
tiny_rope_axial_f64 tiny rope-axial 3 2 -f64 -dim 32 -depth 2 -heads 2 -mlp 64
tiny_rope_mixed_f64 tiny rope-mixed 3 2 -f64 -dim 32 -depth 2 -heads 2 -mlp 64
tiny_rope_1d_f64 tiny rope-1d 3 2 -f64 -dim 32 -depth 2 -heads 2 -mlp 64
tiny_cpvt_f64 tiny cpvt 3 2 -f64 -dim 32 -depth 2 -heads 2 -mlp 64
small_rope_axial_f32 small rope-axial 1 2
small_rope_axial_f64 small rope-axial 1 2 -f64
LIST
