#!/usr/bin/env bash
# Makes sure headless Chromium and its WebDriver are here for the browser tests: Debian's packages chromium and
# chromium-driver, installed with apt-get when missing (as root, or with password-less sudo).
# Exit 0: ready (prints nothing when they were already there). Exit 1: one line saying why not.
set -uo pipefail
have() { command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; }
have && exit 0
if [ "$(id -u)" = 0 ]; then SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO=(sudo -n)
else echo "cannot install Chromium: not root and no password-less sudo (install Debian's chromium and chromium-driver)"; exit 1
fi
command -v apt-get >/dev/null 2>&1 || { echo "cannot install Chromium: no apt-get here (install chromium and chromedriver)"; exit 1; }
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
echo "[chromium] installing chromium and chromium-driver with apt-get (once)"
apt=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=300)
if ! { "${apt[@]}" update && "${apt[@]}" install -y chromium chromium-driver; } >"$log" 2>&1; then
  echo "cannot install Chromium with apt-get: $(grep -E '^(E|Err):' "$log" | tail -1 || tail -1 "$log")"; exit 1
fi
have || { echo "cannot install Chromium: apt-get succeeded but chromium/chromedriver are not on PATH"; exit 1; }
echo "[chromium] $(chromium --version 2>/dev/null | head -1)"
