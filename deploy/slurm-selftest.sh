#!/usr/bin/env bash
# Runs the Slurm path of README "More than one machine" once on this
# machine, with Debian's Slurm (apt-get install slurm-wlm munge) as root:
# it starts munged, slurmctld and slurmd for a one-node cluster (this host,
# all its CPUs), runs a small Three-Cell sweep unsharded, submits the same
# sweep as a job array of 2 shards with the merge chained after it
# (deploy/slurm-threecell.sh), waits, and checks that the merged results
# equal the unsharded ones (results.csv without its wall_s column, and
# results.md without its wall-time line). It stops its daemons on exit.
# Not part of CI. Run from the repository root:
#
#   bash deploy/slurm-selftest.sh [WORKDIR]
set -euo pipefail
work=${1:-$(mktemp -d /tmp/loope-slurm.XXXXXX)}
mkdir -p "$work"
work=$(cd "$work" && pwd)
for bin in munged slurmctld slurmd sbatch squeue scontrol; do
  command -v "$bin" >/dev/null || { echo "slurm-selftest: $bin not found; apt-get install slurm-wlm munge" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "slurm-selftest: run as root (it starts slurmd and munged)" >&2; exit 1; }

host=$(hostname -s)
cpus=$(nproc)
mem=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
conf=$work/slurm.conf
mkdir -p "$work/state" "$work/spool"
cat > "$conf" <<CONF
ClusterName=loope-selftest
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$conf

cleanup() {
  scancel --user=root >/dev/null 2>&1 || true
  [ -f "$work/slurmd.pid" ] && kill "$(cat "$work/slurmd.pid")" 2>/dev/null || true
  [ -f "$work/slurmctld.pid" ] && kill "$(cat "$work/slurmctld.pid")" 2>/dev/null || true
  [ -n "${munge_pid:-}" ] && kill "$munge_pid" 2>/dev/null || true
}
trap cleanup EXIT

# munge: a key of our own and a socket in $work, so a system munged is untouched.
mkdir -p "$work/munge"
[ -f /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key
munged --socket="$work/munge/munge.socket" --pid-file="$work/munge/munged.pid" \
  --log-file="$work/munge/munged.log" --seed-file="$work/munge/munged.seed" --force
munge_pid=$(cat "$work/munge/munged.pid")
# Slurm reads the socket path from its auth plugin option.
echo "AuthInfo=socket=$work/munge/munge.socket" >> "$conf"
slurmctld -f "$conf"
slurmd -f "$conf"
for _ in $(seq 60); do
  sinfo -h -o %T 2>/dev/null | grep -qE '^idle' && break
  sleep 1
done
sinfo

echo "== building loope"
go build -o "$work/loope" ./cmd/loope
export LOOPE=$work/loope
# One CPU and one thread per task, so both shards run at once on 2 CPUs.
export SWEEP="-preset tiny -pe none,sin1d,hilbert -seeds 2 -steps 600 -batch 16 -threads 1" CPUS=1

echo "== unsharded sweep"
start=$(date +%s)
$LOOPE threecell $SWEEP -out "$work/whole" > /dev/null 2> "$work/whole.log"
echo "unsharded: $(( $(date +%s) - start )) s"

echo "== job array of 2 shards, merge chained with --dependency=afterok"
start=$(date +%s)
bash deploy/slurm-threecell.sh 2 2 "$work/sharded"
while squeue -h | grep -q .; do sleep 2; done
echo "array + merge: $(( $(date +%s) - start )) s"
for f in "$work"/sharded/slurm/*.log; do echo "--- $f"; cat "$f"; done

strip_csv() { awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "wall_s") w = i } { $w = ""; print }' OFS=, "$1"; }
strip_md() { grep -v '^Wall time' "$1"; }
diff <(strip_csv "$work/whole/results.csv") <(strip_csv "$work/sharded/results.csv")
diff <(strip_md "$work/whole/results.md") <(strip_md "$work/sharded/results.md")
echo "== merged results equal the unsharded results ($work)"
cat "$work/sharded/results.md"
