#!/usr/bin/env bash
# The MNIST bar of README "Train on real data": the `small` preset trained on
# real MNIST for a fixed wall-time budget per PE, one after the other (each
# run gets both cores), then a Markdown table from the runs' result.json.
# Not part of CI. Usage: bash bench/mnist.sh [budget, default 10m] [PEs...]
# Extra recipe flags come from $FLAGS (default below). Run from the repo root.
set -euo pipefail
budget=${1:-10m}
shift || true
pes=("$@")
[ ${#pes[@]} -eq 0 ] && pes=(learnable sin1d loope)
flags=${FLAGS:--batch 64 -lr 3e-3 -warmup 100 -val-frac 0.02}
go build -o /tmp/loope-mnist ./cmd/loope
out=${OUT:-out/mnist}
mkdir -p "$out"
for pe in "${pes[@]}"; do
  # shellcheck disable=SC2086
  /tmp/loope-mnist train -data mnist -preset small -pe "$pe" -time "$budget" $flags -out "$out/$pe" \
    > "$out/$pe.out" 2> "$out/$pe.err"
  tail -n 1 "$out/$pe.out"
done
printf '| PE | test accuracy | steps × batch | images seen | wall |\n|---|---|---|---|---|\n'
for pe in "${pes[@]}"; do
  python3 - "$out/$pe/result.json" "$pe" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"| {sys.argv[2]} | {100 * r['test_acc']:.2f}% | {r['steps']} × {r['batch']} | {r['steps'] * r['batch']:,} | {r['wall_s'] / 60:.1f} min |")
EOF
done
