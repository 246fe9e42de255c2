#!/usr/bin/env bash
# Issue 15: regenerate the committed evaluations of the CPU-scale runs with the paper's protocol as its code runs it
# (last iterate), the early-stop variants under their own names, and the selector attacks (added to the adaptive
# set). Rows that did not change are read back from each report directory; only the new ones are computed.
# Usage: bash experiments/verdict_eval.sh RUN [RUN ...]      (e.g. ewas-s0 cifs-s0 at-s0; one thread per chain)
set -uo pipefail
cd "$(dirname "$0")/.."
source tools/env.sh
R=results/cpu_repro
ATTACKS=clean,fgsm,pgd20,cw,fgsm-paper,pgd20-paper,cw-paper,fgsm-paper-es,pgd20-paper-es,cw-paper-es
for run in "$@"; do
  n=$(python -c "import pandas as pd; print(pd.read_csv('$R/$run/eval/report.csv').n.iloc[0])")
  echo "== $run n=$n $(date -u +%FT%TZ)"
  ewas-eval "$R/$run/last.pt" --out "$R/$run/eval" --resume --attacks "$ATTACKS" --n "$n" --threads 1 > "$R/$run/eval/verdict-eval.log" 2>&1
  echo "   exit $? $(date -u +%FT%TZ)"
done
