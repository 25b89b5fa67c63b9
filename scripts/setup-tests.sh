#!/usr/bin/env bash
# Installs what the whole test suite needs: the Python packages, and Debian's Chromium for the
# headless-browser tests (Playwright drives /usr/bin/chromium; its own browser download is not used).
set -euo pipefail
python3 -m pip install -q -r requirements-dev.txt
if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null
    else sudo apt-get update -qq && sudo apt-get install -y -qq chromium chromium-driver >/dev/null; fi
fi
