#!/usr/bin/env bash
# Pack what a lent GPU machine needs beside the working tree into .gpu/ (git-ignored, carried with `carry: [".gpu"]`):
# wheels of the Python packages its image lacks (Python 3.12: nbdev and execnb for the notebooks' `#| gpu` cells,
# torchattacks, their pure-Python needs) and a tar of CIFAR-10 JPEGs, as many per class as fit beside the working tree
# under the machine's 64 MiB transfer limit. Run here (package registries reachable), then experiments/gpu_session.sh
# there. Usage: bash tools/gpu_pack.sh [DATA_DIR]   (default: $EWAS_DATA)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${1:-${EWAS_DATA:?give the CIFAR-10 ImageFolder (train/, test/) or set EWAS_DATA}}"
PY="${PYTHON:-.venv/bin/python}"
grep -qxF '/.gpu/' .git/info/exclude 2>/dev/null || { mkdir -p .git/info; echo '/.gpu/' >> .git/info/exclude; }
rm -rf .gpu && mkdir -p .gpu/whl
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .gpu/whl \
  fastcore==2.2.41 nbdev==3.3.26 execnb==0.3.4 torchattacks==3.5.1 asttokens astunparse fastgit ghapi watchdog ipython \
  ipython-pygments-lexers jedi parso traitlets prompt_toolkit pexpect ptyprocess decorator matplotlib-inline stack_data \
  executing pure_eval wcwidth 2>&1 | grep -v '^WARNING: Location' || true
tree=$(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1)
whl=$(du -cb .gpu/whl/*.whl | tail -1 | cut -f1)
room=$(( 64 * 1024 * 1024 - tree - whl - 2 * 1024 * 1024 ))   # 2 MiB to spare (untracked files, tar headers)
avg=$(( $(find "$DATA" -name '*.jpg' -printf '%s\n' | awk '{s+=$1; n++} END {print int(s/n) + 512}') ))   # + tar header
per=$(( room / avg / 10 ))       # images per class, train and test together
test=$(( per / 6 )); train=$(( per - test ))
[ "$train" -ge 100 ] || { echo "error: only $room bytes of room beside the working tree ($tree) and wheels ($whl)"; exit 2; }
list=$(mktemp)
for split in train test; do
  n=$([ $split = train ] && echo $train || echo $test)
  for d in "$DATA/$split"/*/; do ls "$d" | sort | sed -n "1,${n}p" | sed "s|^|$split/$(basename "$d")/|"; done
done > "$list"
tar cf .gpu/cifar.tar -C "$DATA" -T "$list"
echo "packed .gpu: $(ls .gpu/whl | wc -l) wheels ($whl bytes), $(wc -l < "$list") JPEGs ($train train + $test test per class, $(stat -c %s .gpu/cifar.tar) bytes); working tree $tree bytes"
