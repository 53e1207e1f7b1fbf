#!/usr/bin/env bash
# The MNIST bar of README "Train on real data": the `small` preset trained on
# real MNIST for a fixed wall-time budget per PE, one after the other (each
# run gets both cores), then a Markdown table from the runs' result.json.
# Not part of CI. Usage: bash bench/mnist.sh [budget, default 10m] [PEs...]
# Recipe flags: $FLAGS for every PE if set, else the per-PE recipe below.
# Run from the repo root.
set -euo pipefail
budget=${1:-10m}
shift || true
pes=("$@")
[ ${#pes[@]} -eq 0 ] && pes=(learnable sin1d loope)
# Batch 32 with lr 2e-3 learns more per image than 64 with 3e-3, and two
# data-parallel replicas (the default on 2 cores) keep both cores busy on
# it. learnable goes further: batch 16 at lr 1.4e-3 (lr ∝ √batch), and
# -pe-lr-scale 40 lets timm's table (initialised at N(0, .02²)) move 40×
# faster. LOOPE keeps batch 64, lr 3e-3 and no PE factor: its BatchNorm
# rules out replicas, and batch 32 with a factor learned slower (README
# "Train on real data").
recipe() {
  if [ -n "${FLAGS:-}" ]; then echo "$FLAGS"; return; fi
  case $1 in
    loope) echo "-batch 64 -lr 3e-3 -warmup 100 -val-frac 0.02" ;;
    learnable) echo "-batch 16 -lr 1.4e-3 -pe-lr-scale 40 -warmup 200 -val-frac 0.02" ;;
    *) echo "-batch 32 -lr 2e-3 -warmup 100 -val-frac 0.02" ;;
  esac
}
go build -o /tmp/loope-mnist ./cmd/loope
out=${OUT:-out/mnist}
mkdir -p "$out"
for pe in "${pes[@]}"; do
  # shellcheck disable=SC2086
  /tmp/loope-mnist train -data mnist -preset small -pe "$pe" -time "$budget" $(recipe "$pe") -out "$out/$pe" \
    > "$out/$pe.out" 2> "$out/$pe.err"
  tail -n 1 "$out/$pe.out"
done
printf '| PE | recipe | test accuracy | steps × batch | images seen | wall |\n|---|---|---|---|---|---|\n'
for pe in "${pes[@]}"; do
  python3 - "$out/$pe/result.json" "$pe" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
n = r.get('steps_done', r['steps'])
print(f"| {sys.argv[2]} | lr {r['lr']:g}, PE ×{r.get('pe_lr_scale', 1):g}, {r.get('replicas', 1)} replica(s) | {100 * r['test_acc']:.2f}% | {n} × {r['batch']} | {n * r['batch']:,} | {r['wall_s'] / 60:.1f} min |")
EOF
done
