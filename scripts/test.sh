#!/usr/bin/env bash
# The whole test suite, from a fresh clone: sets up .venv (with the test tools) and the real
# VGG16 weights and the instant network if they are missing (install.py fetches both), checks lint, format and types, then runs pytest.
# Extra arguments go to pytest (e.g. -m "not gimp and not real_weights" for the fast subset).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 install.py --dev --no-plugin --no-demo
.venv/bin/python -m ruff check .
.venv/bin/python -m ruff format --check .
.venv/bin/python -m mypy                   # stylecore/ and install.py
exec .venv/bin/python -m pytest "$@"
