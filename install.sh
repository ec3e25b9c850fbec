#!/usr/bin/env bash
# Installs everything collectors needs on a fresh Debian machine: Chromium from Debian (Playwright
# cannot download its own browser here) and the package with its test extras in .venv.
set -euo pipefail
cd "$(dirname "$0")"

# chromium-headless-shell is what the scraper launches (one renderer per context, ~3.5x less CPU
# than the full browser); chromium is the fallback and what people debug with.
if ! [ -x /usr/bin/chromium ] || ! dpkg -s chromium-headless-shell >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq chromium chromium-headless-shell >/dev/null
fi

PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
# The AsyncAPI project's own parser (@asyncapi/parser, package-lock.json), which
# tests/unit/test_asyncapi.py runs on the generated contract. --ignore-scripts: no package needs one
# (one would only send install telemetry).
if command -v npm >/dev/null 2>&1; then
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
else
  echo "node/npm not found: skipping @asyncapi/parser (tests/unit/test_asyncapi.py then skips its parser check)"
fi
echo "Installed. Activate with: . .venv/bin/activate"
