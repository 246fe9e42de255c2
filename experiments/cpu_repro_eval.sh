#!/usr/bin/env bash
# Evaluation of the CPU-scale reproduction (run after experiments/cpu_repro.sh; each model as soon as it is trained).
# Clean accuracy on all 10,000 test images (experiments/test_set_eval.py); the standard attacks, the paper's protocol and
# the adaptive attacks on the mask choice on a fixed seeded slice of N test images; AutoAttack (reference budgets,
# CPU-hours) on a smaller seeded slice of N_AUTOATTACK.
# Finished rows are kept: re-running continues where an interrupted evaluation stopped.
# Usage: bash experiments/cpu_repro_eval.sh RESULTS_DIR RUN [N] [ATTACKS] [N_AUTOATTACK]
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/env.sh
R="$1"; RUN="$2"; N="${3:-1000}"
ATTACKS="${4:-clean,fgsm,pgd20,cw,fgsm-paper,pgd20-paper,cw-paper}"
N_AA="${5:-250}"
ck="$R/$RUN/last.pt"
while [ ! -f "$R/$RUN/status.json" ]; do sleep 30; done      # wait until the run is trained
ev() { local out=$1; shift; ewas-eval "$ck" --out "$out" --threads 1 $( [ -d "$out" ] && echo --resume ) "$@"; }
[ -f "$R/$RUN/eval-clean10k/report.csv" ] || python experiments/test_set_eval.py "$ck" "$R/$RUN/eval-clean10k"
ev "$R/$RUN/eval" --attacks "$ATTACKS" --n "$N"                      # + the adaptive attacks that apply
ev "$R/$RUN/eval-aa" --attacks clean,autoattack --n "$N_AA" --no-adaptive   # AutoAttack: CPU-hours, smaller slice
