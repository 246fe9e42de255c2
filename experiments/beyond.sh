#!/usr/bin/env bash
# Issue 19 (nbs/09_beyond): the EWAS variants without the label leak, at the CPU-scale budget of results/cpu_repro
# (ResNet-18 x1/8, 5 epochs of PGD-3 on 10,000 images), two seeds, then their evaluation beside AT and the paper's
# EWAS (experiments/beyond_eval.py) and the table (experiments/beyond_table.py). Every step continues where it
# stopped when the command is run again (finished runs and rows are kept). One thread.
# Usage: bash experiments/beyond.sh [SEED ...]      (default: 0 1)
set -uo pipefail
cd "$(dirname "$0")/.."
source tools/env.sh
VARIANTS=(ewas-pred ewas-soft ewas-sat ewas-mean)
seeds=("$@"); [ $# -eq 0 ] && seeds=(0 1)
for s in "${seeds[@]}"; do
  bash experiments/cpu_repro.sh results/beyond $(for v in "${VARIANTS[@]}"; do echo "$v-s$s:$v:$s"; done)
  python experiments/beyond_eval.py $(for v in "${VARIANTS[@]}"; do echo "results/beyond/$v-s$s"; done) \
    results/cpu_repro/ewas-s$s results/cpu_repro/at-s$s
done
python experiments/beyond_table.py
