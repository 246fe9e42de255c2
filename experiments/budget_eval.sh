#!/usr/bin/env bash
# Issue 18: the full evaluation of a finished budget run (its last.pt, never a checkpoint picked on the test split):
# clean accuracy on all 10,000 test images, then the paper's protocol and the standard attacks (AutoAttack included;
# for label-driven defences also the adaptive and selector attacks) on a seeded slice of 1,000 as a cascade, with the
# sanity checks. Both reports continue where they stopped when run again. Batches of 64: AutoAttack at width 1/4 takes
# 1.5-2 hours per batch of 256 on one core, longer than what is left of a work period, and an unfinished batch is lost.
# The cascade's rows are cumulative (robust to an attack and to all before it), so the paper's protocol and the standard
# attacks also run each on all 1,000 examples (eval-each/, no checks: the cascade has them): the numbers the paper's
# claims are compared with. They run first: minutes, where the cascade's AutoAttack takes hours.
# Usage: bash experiments/budget_eval.sh RUN [RUN ...]      (e.g. at-w025-e40-s0; one thread)
set -uo pipefail
cd "$(dirname "$0")/.."
source tools/env.sh
R=results/budget
for run in "$@"; do
  echo "== $run $(date -u +%FT%TZ)"
  # a finished report is left as it is (run again, it would be rewritten unchanged but for the commit it names)
  [ -f "$R/$run/test10k/report.json" ] || python experiments/test_set_eval.py "$R/$run/last.pt" "$R/$run/test10k" clean > "$R/$run/test10k.log" 2>&1
  each="$R/$run/eval-each"
  [ -f "$each/report.json" ] || ewas-eval "$R/$run/last.pt" --out "$each" $( [ -d "$each" ] && echo --resume ) --attacks clean,fgsm-paper,pgd20-paper,cw-paper,fgsm,pgd20,cw \
    --no-adaptive --no-checks --n 1000 --batch-size 64 --threads 1 >> "$R/$run/eval-each.log" 2>&1
  out="$R/$run/eval"
  ewas-eval "$R/$run/last.pt" --out "$out" $( [ -d "$out" ] && echo --resume ) --protocol both --n 1000 --cascade --batch-size 64 --threads 1 \
    >> "$R/$run/eval.log" 2>&1
  echo "   exit $? $(date -u +%FT%TZ)"
done
