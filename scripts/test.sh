#!/usr/bin/env bash
# The whole test suite, from a fresh clone: sets up .venv (with the test tools) and the real
# VGG16 weights if they are missing, then runs pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 install.py --dev --no-plugin --no-demo
exec .venv/bin/python -m pytest "$@"
