# Source me: creates (once) and activates the project's virtual environment in .venv.
# Re-installs only when pyproject.toml or this file changed (a stamp in .venv records their hash).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${EWAS_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
stamp_now="$(cat "$ROOT/pyproject.toml" "$ROOT/tools/env.sh" | sha256sum | cut -c1-16)"
if [ ! -x "$VENV/bin/python" ]; then
  echo "[env] creating virtual environment $VENV"
  "$PY" -m venv "$VENV"
fi
if [ "$(cat "$VENV/.ewas_stamp" 2>/dev/null)" != "$stamp_now" ] && command -v flock >/dev/null; then
  exec 9>"$VENV/.ewas_lock"; flock 9   # one installer at a time; the others wait, then find the stamp current
fi
if [ "$(cat "$VENV/.ewas_stamp" 2>/dev/null)" != "$stamp_now" ]; then
  echo "[env] installing ewas_nb and its dependencies into $VENV (first run takes a few minutes)"
  t0=$(date +%s)
  pipq() { "$VENV/bin/python" -m pip install -q "$@" 2> >(grep -v "is ignored: it is neither a file" >&2); }
  # One resolution for torch (unpinned but for a lower bound: pip takes the wheels the machine already has when it
  # can) and the package; --no-compile: Python compiles the modules it imports on first import instead of pip compiling
  # every file of every package (measured: 131 s + 30 s first import against 179 s + 18 s in three pip calls).
  pipq --no-compile "torch>=2.1" "torchvision>=0.16" -e "$ROOT[dev]"
  # torchattacks pins requests~=2.25.1 (conflicts with jupyterlab) yet never imports it: no deps.
  pipq --no-compile --no-deps "torchattacks>=3.5"
  "$VENV/bin/python" -m ipykernel install --sys-prefix --name ewas_nb --display-name "ewas_nb (.venv)" >/dev/null
  echo "$stamp_now" > "$VENV/.ewas_stamp"
  echo "[env] installed in $(( $(date +%s) - t0 )) s"
fi
export PATH="$VENV/bin:$PATH"
export VIRTUAL_ENV="$VENV"
