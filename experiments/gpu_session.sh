#!/usr/bin/env bash
# Issue 18, items 6-7: the project's GPU work as ONE command of under 10 minutes on a lent machine (15 minutes of
# device time per session, the start included). Prepare here:   bash tools/gpu_pack.sh   (wheels + CIFAR-10 JPEGs in .gpu/)
# then call the device tool:   run(command="bash experiments/gpu_session.sh", carry=[".gpu"], timeout_s=590)
# and commit what comes back from $OUT under results/gpu/ (the checkpoints, metrics, logs).
#  1. the notebooks' `#| gpu` cells on CUDA (nbdev-test --flags gpu; 00_core, 02_baselines, 04_attacks, 05_train,
#     06_evaluate), each notebook's log in $OUT/cells/
#  2. full-width ResNet-18, the budget recipe (PGD-3, step 2.5eps/3, cosine, batch 128, channels_last) under AMP:
#     plain AT and AT+EWAS on the carried images, $EPOCHS epochs each; checkpoints, metrics, throughput
#  3. their evaluation on the carried test images: clean, PGD-20, CW, AutoAttack (+ the selector attacks for EWAS)
# Dry run on a CPU machine: SKIP_INSTALL=1 PYTHON=.venv/bin/python DEVICE=cpu WIDTH=0.125 EPOCHS=1 SUBSET=256 N=64 CELLS=0 \
#   OUT=/tmp/gpu_out EWAS_DATA=... bash experiments/gpu_session.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/gpu_out}"; mkdir -p "$OUT/cells" "$OUT/at" "$OUT/ewas"
PY="${PYTHON:-python3}" DEVICE="${DEVICE:-cuda}" WIDTH="${WIDTH:-1.0}" EPOCHS="${EPOCHS:-40}" N="${N:-1000}" CELLS="${CELLS:-1}"
t0=$(date +%s); say() { echo "[$(( $(date +%s) - t0 )) s] $*" | tee -a "$OUT/session.log"; }
if [ "${SKIP_INSTALL:-0}" != 1 ]; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/*.whl || exit 1
  export PYTHONPATH="/tmp/site:$PWD" PATH="/tmp/site/bin:$PATH"
  mkdir -p /tmp/cifar && tar xf .gpu/cifar.tar -C /tmp/cifar && export EWAS_DATA=/tmp/cifar
fi
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg PYTHONHASHSEED=0 EWAS_DATA="${EWAS_DATA:?}"
TRAIN=("$PY" -c 'import sys; from ewas_nb.cli import train; sys.exit(train())')          # ewas-train, without installing
EVAL=("$PY" -c 'import sys; from ewas_nb.cli import evaluate; sys.exit(evaluate())')       # ewas-eval
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
  "$PY" -c "import torch, ewas_nb; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else ''); print('ewas_nb', ewas_nb.__version__)"
  echo "train images per class: $(ls "$EWAS_DATA/train/airplane" | wc -l), test: $(ls "$EWAS_DATA/test/airplane" | wc -l)"; } > "$OUT/machine.txt" 2>&1
say "$(tr '\n' ' ' < "$OUT/machine.txt")"

if [ "$CELLS" = 1 ]; then   # the notebooks side by side (sharing the one GPU; at most 3 minutes together)
  for nb in 00_core 02_baselines 04_attacks 05_train 06_evaluate; do
    ( s=$(date +%s); timeout 180 nbdev-test nbs/$nb.ipynb --flags gpu --do-print > "$OUT/cells/$nb.log" 2>&1
      echo "$nb: exit $? in $(( $(date +%s) - s )) s" >> "$OUT/cells/summary.txt" ) &
  done
  wait; say "gpu cells: $(tr '\n' ';' < "$OUT/cells/summary.txt")"
fi

recipe=(--dataset folder --data-dir "$EWAS_DATA" --arch resnet18 --width "$WIDTH" --method pgd --eps 8/255 --alpha 6.6667/255
        --steps 3 --epochs "$EPOCHS" --batch 128 --lr 0.1 --schedule cosine --val-n 500 --val-steps 5 --val-split test
        --seed 0 --device "$DEVICE" --quiet ${SUBSET:+--train-subset $SUBSET})
[ "$DEVICE" = cuda ] && recipe+=(--amp)
for run in at ewas; do   # each at most 2 minutes; a run cut short keeps its epochs (last.pt) and says so
  def=$([ $run = ewas ] && echo ewas || echo none)
  s=$(date +%s); timeout -s INT 120 "${TRAIN[@]}" "${recipe[@]}" --defense $def --out "$OUT/$run/run" > "$OUT/$run/train.log" 2>&1
  say "train $run: exit $? in $(( $(date +%s) - s )) s; $(tail -n 2 "$OUT/$run/train.log" | head -n 1)"
  [ -f "$OUT/$run/run/metrics.csv" ] && "$PY" - "$OUT/$run/run/metrics.csv" "${SUBSET:-0}" "$EWAS_DATA" <<'PYEOF' | tee -a "$OUT/session.log"
import sys, pandas as pd, pathlib
m, subset, data = pd.read_csv(sys.argv[1]), int(sys.argv[2]), pathlib.Path(sys.argv[3])
n = subset or sum(1 for _ in (data / 'train').glob('*/*.jpg'))
print(f"  {len(m)} epochs, median {m.time_s.median():.1f} s per epoch (held-out check included): {n / m.time_s.median():.0f} training images/s "
      f"(PGD-3: 4 forward-backward passes each); last epoch held-out clean {m.val_clean_acc.iloc[-1]:.3f}, PGD-5 {m.val_pgd_acc.iloc[-1]:.3f}")
PYEOF
done

for run in at ewas; do   # the evaluation, at most 1 minute each (a cut evaluation keeps its finished rows)
  [ -f "$OUT/$run/run/last.pt" ] || continue
  s=$(date +%s); timeout -s INT 60 "${EVAL[@]}" "$OUT/$run/run/last.pt" --data-dir "$EWAS_DATA" --n "$N" --out "$OUT/$run/eval" \
    --cascade --device "$DEVICE" --quiet > "$OUT/$run/eval.log" 2>&1
  say "eval $run: exit $? in $(( $(date +%s) - s )) s"
done
# What comes back is at most 8 files of 16 MiB: the weights as float16 state dicts (a full-width last.pt with its
# optimizer is ~90 MB) and everything else in one tar, all split into 15 MiB pieces (cat results.tar.* | tar x).
for run in at ewas; do
  [ -f "$OUT/$run/run/last.pt" ] && "$PY" -c "import sys, torch; ck = torch.load(sys.argv[1], map_location='cpu', weights_only=False)
ck['model'] = {k: v.half() if v.is_floating_point() else v for k, v in ck['model'].items()}; ck.pop('optimizer', None)
torch.save(ck, sys.argv[2])" "$OUT/$run/run/last.pt" "$OUT/$run/run/last_fp16.pt" && rm -f "$OUT/$run/run/last.pt" "$OUT/$run/run/best.pt"
done
say "done"
tar cf /tmp/results.tar -C "$OUT" . && rm -rf "${OUT:?}"/* && split -b 15M /tmp/results.tar "$OUT/results.tar." 
ls -l "$OUT"
