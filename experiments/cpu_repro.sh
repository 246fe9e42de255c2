#!/usr/bin/env bash
# CPU-scale reproduction of the paper's AT rows on the shared real CIFAR-10 copy (20,000 train JPEGs, 10,000 test).
# Reduced budget (the paper's runs are GPU work): ResNet-18 at 1/8 width, 10,000 training images, 5 epochs,
# PGD-3 training (eps 8/255, step 2.5*eps/3), lr 0.1 x0.1 at 50% and 75%, batch 128. Same budget and seed for
# every defence; AT and AT+EWAS repeated with a second seed. Two runs at a time, one CPU thread each.
# Usage: bash experiments/cpu_repro.sh [RESULTS_DIR [NAME:DEFENSE:SEED ...]]     (then experiments/cpu_repro_eval.sh)
# With runs named, it trains those one after another at the same budget (e.g. the EWAS variants of nbs/09_beyond:
# bash experiments/cpu_repro.sh results/beyond ewas-pred-s0:ewas-pred:0 ewas-soft-s0:ewas-soft:0); a run stopped
# half-way continues from its last epoch when the command is run again. Named runs check their held-out accuracy on
# the test split (--val-split test), as the runs above did (they predate --val-split): so they train on the very same
# 10,000 images; the final evaluation uses last.pt, never a checkpoint chosen on the test split.
set -uo pipefail
cd "$(dirname "$0")/.."
source tools/env.sh
R="${1:-results/cpu_repro}"
DATA="${EWAS_DATA:-${EWAS_CIFAR_DIR:-../shared/data/cifar10-jpeg}}"
mkdir -p "$R"
common=(--dataset folder --data-dir "$DATA" --arch resnet18 --width 0.125 --method pgd --eps 8/255 --alpha 6.6667/255
        --steps 3 --epochs 5 --batch 128 --lr 0.1 --milestones 0.5,0.75 --train-subset 10000 --val-n 200 --val-steps 5
        --threads 1 --quiet)
run() { # name defence seed [extra...]: trains, or continues a stopped run; marks it done only when it finished
  local name=$1 def=$2 seed=$3; shift 3
  grep -q '"done": true' "$R/$name/status.json" 2>/dev/null && return 0
  if [ -f "$R/$name/last.pt" ]; then
    ewas-train "${common[@]}" --defense "$def" --seed "$seed" --out "$R/$name" --resume "$@" >> "$R/$name.log" 2>&1
  else ewas-train "${common[@]}" --defense "$def" --seed "$seed" --out "$R/$name" "$@" > "$R/$name.log" 2>&1; fi \
    && echo '{"done": true}' > "$R/$name/status.json"
}
if [ $# -gt 1 ]; then
  shift
  for spec in "$@"; do IFS=: read -r name def seed <<< "$spec"; run "$name" "$def" "$seed" --val-split test; done
else
  (run at-s0 none 0; run cas-s0 cas 0; run at-s1 none 1) &
  (run ewas-s0 ewas 0 --lam 0.01; run cifs-s0 cifs 0; run ewas-s1 ewas 1 --lam 0.01) &
  wait
fi
echo "all training runs finished"
