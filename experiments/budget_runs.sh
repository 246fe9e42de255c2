#!/usr/bin/env bash
# Issue 18 budget runs on the shared real CIFAR-10 copy (20,000 train JPEGs, 10,000 test): ResNet-18 at 1/4 width,
# PGD-3 training attack (eps 8/255, step 2.5*eps/3), cosine schedule, batch 128, channels_last (the default since 2026-12-03; the earlier runs asked for it), one CPU thread.
# One run at a time per core; each epoch is checkpointed, so a killed run continues with the same command.
# Usage: bash experiments/budget_runs.sh NAME DEFENSE SEED EPOCHS [extra ewas-train options]
set -uo pipefail
cd "$(dirname "$0")/.."
source tools/env.sh
DATA="${EWAS_DATA:-../shared/data/cifar10-jpeg}"
R=results/budget
name=$1 def=$2 seed=$3 epochs=$4; shift 4
mkdir -p "$R"
common=(--dataset folder --data-dir "$DATA" --arch resnet18 --width 0.25 --method pgd --eps 8/255 --alpha 6.6667/255
        --steps 3 --epochs "$epochs" --batch 128 --lr 0.1 --schedule cosine --val-n 500 --val-steps 5
        --threads 1 --quiet --defense "$def" --seed "$seed" --out "$R/$name")
if [ -f "$R/$name/last.pt" ]; then ewas-train "${common[@]}" --resume "$@" >> "$R/$name.log" 2>&1
else ewas-train "${common[@]}" "$@" > "$R/$name.log" 2>&1; fi
echo "exit $? $(date -u +%FT%TZ)" >> "$R/$name.log"
