#!/usr/bin/env bash
# Issue 15: every attack of the verdict plus AutoAttack's whole set on the selector (input -> the defence layer's
# auxiliary logits), as a cascade (each attack only on the examples all earlier ones left correct), so that the
# expensive last attacks cost little. Reports in results/cpu_repro/RUN/eval-cascade/ (re-running continues them).
# Usage: bash experiments/cascade_eval.sh RUN [RUN ...]
set -uo pipefail
cd "$(dirname "$0")/.."
source tools/env.sh
R=results/cpu_repro
ORDER=clean,fgsm,fgsm-paper,fgsm-paper-es,pgd20-paper-es,pgd20,cw,pgd20-paper,cw-paper,cw-paper-es
for run in "$@"; do
  n=$(python -c "import pandas as pd; print(pd.read_csv('$R/$run/eval/report.csv').n.iloc[0])")
  adaptive=$(python -c "
from ewas_nb.baselines import load_model
m, _ = load_model('$R/$run/last.pt', 'cpu')
from ewas_nb.attacks import adaptive_attacks
a = adaptive_attacks(m); order = ['alc', 'alc-ce', 'bpda', 'selector-apgd-ce', 'selector-apgd-t', 'fixed-mask', 'fixed-mask-steer']
print(','.join([x for x in order if x in a] + (['selector-autoattack'] if a else [])))")
  out="$R/$run/eval-cascade"
  echo "== $run n=$n $(date -u +%FT%TZ)"
  ewas-eval "$R/$run/last.pt" --out "$out" $( [ -d "$out" ] && echo --resume ) --cascade --no-adaptive --no-checks \
    --attacks "$ORDER${adaptive:+,$adaptive}" --n "$n" --threads 1 > "$R/$run/cascade-eval.log" 2>&1
  echo "   exit $? $(date -u +%FT%TZ)"
done
