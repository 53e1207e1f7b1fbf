#!/usr/bin/env bash
# Regenerates the CNN goldens against torchvision (docs/cnn.md): for each
# line, `loope fixture -arch ...` writes a full fixture to a temporary file
# (too large to commit), testdata/gen/cnn_torchvision.py (Debian
# python3-torch, python3-torchvision) writes the compact golden
# testdata/cnn_<name>.golden.safetensors, and the fixture is deleted.
# cnn_golden_test.go rebuilds the fixture from the golden's metadata.
# Run from the repo root:  bash testdata/gen/cnn_fixtures.sh [name...]
# Each line: name arch image seed batch extra-flags.
set -euo pipefail
go build -o /tmp/loope-fixture ./cmd/loope
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
while read -r name arch image seed batch extra; do
  [ -z "$name" ] && continue
  case "$name" in \#*) continue ;; esac
  if [ $# -gt 0 ] && ! printf '%s\n' "$@" | grep -qx "$name"; then continue; fi
  /tmp/loope-fixture fixture -arch "$arch" -image "$image" -seed "$seed" -batch "$batch" $extra -out "$tmp/f.safetensors"
  /usr/bin/python3 testdata/gen/cnn_torchvision.py "$tmp/f.safetensors" "testdata/cnn_$name.golden.safetensors"
  rm -f "$tmp/f.safetensors"
done <<'LIST'
resnet50_s16_f64 resnet50 16 1 2 -f64 -classes 4
resnet50_s16_f32 resnet50 16 1 2 -classes 4
# the ImageNet stem (7x7/2 conv, max-pool), one input channel, the 6-bit BCE loss
resnet50_s64_imagenet_c1_bce_f64 resnet50 64 2 2 -f64 -channels 1 -cnn-stem imagenet
LIST
