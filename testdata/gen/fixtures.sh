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
LIST
