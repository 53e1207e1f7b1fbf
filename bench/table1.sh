#!/usr/bin/env bash
# README "Table 1 in small": the paper's Table-1 PEs (none, learnable,
# sin1d, hilbert, loope) on real MNIST in the three architectures at their
# CPU presets (vit tiny, cait-tiny, crossvit-tiny: 14 px inputs), 3 seeds.
# One recipe for all (batch 64, AdamW lr 2e-3 → 2.5e-5 cosine, warm-up 100,
# 2 % of the training set for validation); each architecture gets the same
# training-time budget, turned into a fixed step count per architecture
# from its one-thread speed (STEPS_vit, STEPS_cait, STEPS_crossvit below:
# about 75 s at the learnable PE's `loope bench -threads 1 -batch 64` rate),
# so every run is reproducible from its seed. Runs go JOBS at a time, each
# on one kernel thread. Finished runs (their result.json) are skipped, so
# rerunning resumes. Not part of CI. Run from the repo root:
#
#	bash bench/table1.sh            # all 45 runs, then the table
#	TABLE_ONLY=1 bash bench/table1.sh
set -euo pipefail
out=${OUT:-out/table1}
jobs=${JOBS:-2}
seeds=${SEEDS:-"1 2 3"}
pes=${PES:-"none learnable sin1d hilbert loope"}
declare -A steps=([vit]=${STEPS_vit:-1000} [cait]=${STEPS_cait:-600} [crossvit]=${STEPS_crossvit:-350})
declare -A preset=([vit]=tiny [cait]=cait-tiny [crossvit]=crossvit-tiny)
archs=${ARCHS:-"vit cait crossvit"}
mkdir -p "$out"
if [ -z "${TABLE_ONLY:-}" ]; then
  go build -o "$out/loope" ./cmd/loope
  for a in $archs; do for pe in $pes; do for s in $seeds; do
    d="$out/$a-$pe-seed$s"
    [ -f "$d/result.json" ] && continue
    echo "$out/loope train -data mnist -arch $a -preset ${preset[$a]} -pe $pe -seed $s -steps ${steps[$a]} -batch 64 -lr 2e-3 -warmup 100 -val-frac 0.02 -threads 1 -force -out $d > $d.log 2>&1 && tail -n 1 $d.log"
  done; done; done | xargs -P "$jobs" -I{} bash -c {}
fi
python3 - "$out" $archs <<'EOF'
import json, os, statistics as st, sys
out, archs = sys.argv[1], sys.argv[2:]
runs = {}
for d in sorted(os.listdir(out)):
    p = os.path.join(out, d, "result.json")
    if os.path.isfile(p):
        r = json.load(open(p))
        runs.setdefault((r["arch"], r["pe"]), []).append(r)
pes = []
for (a, pe) in runs:
    if pe not in pes:
        pes.append(pe)
print("| PE | " + " | ".join(archs) + " |")
print("|---|" + "---|" * len(archs))
for pe in pes:
    cells = []
    for a in archs:
        rs = runs.get((a, pe), [])
        acc = [100 * r["test_acc"] for r in rs]
        if not acc:
            cells.append("–")
        elif len(acc) == 1:
            cells.append(f"{acc[0]:.2f} (1 seed)")
        else:
            cells.append(f"{st.mean(acc):.2f} ± {st.stdev(acc):.2f}")
    print(f"| {pe} | " + " | ".join(cells) + " |")
print()
for a in archs:
    rs = [r for (x, _), v in runs.items() if x == a for r in v]
    if rs:
        w = [r["wall_s"] for r in rs]
        print(f"{a}: {len(rs)} runs, {rs[0]['steps']} steps × {rs[0]['batch']}, mean run wall {st.mean(w):.0f} s, total {sum(w) / 60:.1f} min")
EOF
