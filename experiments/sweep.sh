#!/usr/bin/env bash
# Issue 18 item 2: the accuracy-vs-compute sweep behind the chosen budget. Plain AT only (ResNet-18, PGD-K training
# attack with step 2.5*eps/K, eps 8/255, cosine schedule, batch 128, one thread, all 20,000 shared training images),
# width {1/8, 1/4} x epochs {10, 20} x K {2, 3}, cheapest first, each run then evaluated: clean on all 10,000 test images
# (test10k/) and PGD-20 on the same seeded 1,000 as the budget runs (eval/). Everything resumes: kill it and run it again.
# `python experiments/sweep_table.py` writes results/budget/sweep/table.{md,csv} and the figure.
# Usage: bash experiments/sweep.sh [PATTERN]    (runs whose name matches PATTERN, e.g. w0125 on one core, w025 on the other)
set -uo pipefail
cd "$(dirname "$0")/.."
source tools/env.sh
S=results/budget/sweep
mkdir -p "$S"
pattern=${1:-}
for width in 0.125 0.25; do for epochs in 10 20; do for k in 2 3; do
  name="w${width/./}-e$epochs-k$k"
  [[ -n "$pattern" && "$name" != *$pattern* ]] && continue
  alpha=$(python -c "print(f'{2.5 * 8 / $k:.4f}/255')")
  echo "== $name $(date -u +%FT%TZ)"
  bash experiments/budget_runs.sh "sweep/$name" none 0 "$epochs" --width "$width" --steps "$k" --alpha "$alpha" --val-split test
  tail -n 1 "$S/$name.log"
  [ -f "$S/$name/test10k/report.json" ] || python experiments/test_set_eval.py "$S/$name/last.pt" "$S/$name/test10k" clean > "$S/$name/test10k.log" 2>&1
  [ -f "$S/$name/eval/report.json" ] || ewas-eval "$S/$name/last.pt" --out "$S/$name/eval" $( [ -d "$S/$name/eval" ] && echo --resume ) --attacks clean,pgd20 \
    --no-adaptive --no-checks --n 1000 --batch-size 64 --threads 1 --quiet >> "$S/$name/eval.log" 2>&1
  echo "   exit $? $(date -u +%FT%TZ)"
done; done; done
