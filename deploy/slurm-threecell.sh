#!/usr/bin/env bash
# A Three-Cell sweep as a Slurm job array, with the merge chained after it
# (README "More than one machine"). Run from a folder every node sees:
#
#   bash deploy/slurm-threecell.sh [SHARDS] [AT_ONCE] [OUT]
#
# submits SHARDS array tasks (at most AT_ONCE running) that each run shard
# SLURM_ARRAY_TASK_ID of SHARDS (loope reads SLURM_ARRAY_TASK_ID and
# SLURM_ARRAY_TASK_COUNT itself), then a merge job that starts only if
# every task succeeded (--dependency=afterok). A failed task can be
# resubmitted alone (sbatch --array=K …): it skips its finished runs.
# LOOPE is the binary (default: loope on PATH); SWEEP holds the sweep's
# flags, the same for every task; CPUS the CPUs of each task (default 2).
set -euo pipefail
shards=${1:-4}
at_once=${2:-$shards}
out=${3:-out/paper-grid}
loope=${LOOPE:-loope}
cpus=${CPUS:-2}
sweep=${SWEEP:-"-preset small -pe none,learnable,sin1d,cpvt,rpe,fourier,sincos2d-sum,hilbert,loope -seeds 3"}
case "$shards$at_once" in *[!0-9]*) echo "SHARDS and AT_ONCE must be positive integers" >&2; exit 2 ;; esac
[ "$shards" -ge 1 ] && [ "$at_once" -ge 1 ] || { echo "SHARDS and AT_ONCE must be ≥ 1" >&2; exit 2; }
mkdir -p "$out/slurm"
# Check the flags once before queueing anything; prints the runs.
$loope threecell $sweep -out "$out" -list
array=$(sbatch --parsable --job-name=loope-threecell --array="0-$((shards - 1))%$at_once" \
  --cpus-per-task="$cpus" --output="$out/slurm/shard-%a.log" \
  --wrap="$loope threecell $sweep -out $out")
merge=$(sbatch --parsable --job-name=loope-merge --dependency="afterok:$array" \
  --cpus-per-task=1 --output="$out/slurm/merge.log" \
  --wrap="$loope threecell -merge -out $out")
echo "submitted array job $array ($shards shards, $at_once at once) and merge job $merge into $out"
