#!/usr/bin/env bash
# Installs everything collectors needs on a fresh Debian machine: Chromium from Debian (Playwright
# cannot download its own browser here) and the package with its test extras in .venv.
set -euo pipefail
cd "$(dirname "$0")"

if ! [ -x /usr/bin/chromium ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq chromium >/dev/null
fi

PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
echo "Installed. Activate with: . .venv/bin/activate"
