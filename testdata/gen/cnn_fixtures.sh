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
# the ImageNet stem (7x7/2 conv, max-pool), one input channel, the 6-bit BCE loss; 64 px leaves
# layer4 2x2 maps (8 values per BatchNorm channel at batch 2, see the Inception3 note)
resnet50_s64_imagenet_c1_bce_f64 resnet50 64 2 2 -f64 -channels 1 -cnn-stem imagenet
# Inception3: 16 px resized to 75 (the Three-Cell case), and 107 px as is with one channel and BCE.
# Batch 8 at 75 px and 107 px at batch 2 leave 8 values per channel to the BatchNorms of Mixed_7
# (1x1 and 2x2 maps): with 2, BatchNorm is so ill-conditioned that float64 agrees to 1e-7 only.
inception3_s16_f64 inception3 16 1 8 -f64 -classes 4
inception3_s16_f32 inception3 16 1 8 -classes 4
inception3_s107_c1_bce_f64 inception3 107 3 2 -f64 -channels 1
LIST
