#!/usr/bin/env bash
# Go vs PyTorch training throughput, side by side, on the same weights and batch.
# Not part of CI. Usage: bash bench/compare.sh [steps] [rounds] [configs...]
# (run from the repo root; configs are names from the list at the end,
# default all).
# For each config it writes a fixture (`loope fixture`, float32, 6-bit BCE),
# then alternates Go and PyTorch runs (3 rounds by default), printing images/s, the ratio
# and peak RSS (/usr/bin/time -v). PyTorch runs with 2 threads in its default
# setting and in the tuned settings of docs/benchmarks.md §2; the
# ratio is taken against the fastest PyTorch setting.
set -euo pipefail
steps=${1:-10}
rounds=${2:-3}
shift 2 || shift $# || true
only=" $* "
command -v /usr/bin/time >/dev/null || sudo apt-get install -y time || apt-get install -y time
/usr/bin/python3 -c 'import torch' 2>/dev/null || apt-get install -y python3-torch
# Debian's torch and numpy call libblas.so.3; without OpenBLAS installed that is the slow reference BLAS,
# which would flatter Go. Installing it makes it the libblas.so.3 alternative (docs/benchmarks.md §2).
dpkg -s libopenblas0-pthread >/dev/null 2>&1 || apt-get install -y libopenblas0-pthread
go build -o /tmp/loope-bench ./cmd/loope
dir=$(mktemp -d)
rss() { grep "Maximum resident" "$1" | awk '{print $6}'; }
printf '| config | Go img/s | PyTorch img/s (best setting) | Go ÷ PyTorch | Go peak RSS MB | PyTorch peak RSS MB |\n|---|---|---|---|---|---|\n' > "$dir/table.md"
while read -r name preset pe batch nsteps; do
  [ -z "$name" ] && continue
  [ "$only" != "  " ] && [[ "$only" != *" $name "* ]] && continue
  nsteps=${nsteps:-$steps}
  fx="$dir/$name.safetensors"
  /tmp/loope-bench fixture -preset "$preset" -pe "$pe" -batch "$batch" -out "$fx" 2>/dev/null
  best_go=0; best_pt=0; rss_go=0; rss_pt=0; best_set=""
  for round in $(seq "$rounds"); do
    /usr/bin/time -v /tmp/loope-bench bench -fixture "$fx" -steps "$nsteps" > "$dir/go.out" 2> "$dir/go.time"
    g=$(awk '{print $3}' "$dir/go.out"); echo "$name round $round go $g"
    best_go=$(python3 -c "print(max($best_go, $g))"); rss_go=$(rss "$dir/go.time")
    for setting in "default" "GOMP_SPINCOUNT=0" "OMP_WAIT_POLICY=PASSIVE" "OPENBLAS_NUM_THREADS=1"; do
      envs=(THREADS=2); [ "$setting" != default ] && envs+=("$setting")
      env "${envs[@]}" /usr/bin/time -v /usr/bin/python3 bench/torch_ref.py "$fx" "$nsteps" > "$dir/pt.out" 2> "$dir/pt.time"
      p=$(awk '{print $3}' "$dir/pt.out"); echo "$name round $round torch[$setting] $p"
      if python3 -c "import sys; sys.exit(0 if $p > $best_pt else 1)"; then best_pt=$p; best_set=$setting; rss_pt=$(rss "$dir/pt.time"); fi
    done
  done
  ratio=$(python3 -c "print(f'{$best_go/$best_pt:.2f}')")
  printf '| %s (%s, pe %s, batch %s) | %s | %s (%s) | %s | %d | %d |\n' "$name" "$preset" "$pe" "$batch" "$best_go" "$best_pt" "$best_set" "$ratio" $((rss_go/1024)) $((rss_pt/1024)) >> "$dir/table.md"
done <<'LIST'
small-learnable small learnable 64
small-loope small loope 64
tiny tiny learnable 64
ti16 ti16 learnable 64 3
LIST
cat "$dir/table.md"
