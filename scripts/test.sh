#!/usr/bin/env bash
# The whole test suite, from a fresh clone: sets up .venv (with the test tools) and the real
# VGG16 weights and the instant network if they are missing (install.py fetches both), checks lint, format and types, then runs pytest.
# Extra arguments go to pytest (e.g. -m "not gimp and not real_weights" for the fast subset).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 install.py --dev --no-plugin --no-demo
# The remote-worker tests start their own sshd on 127.0.0.1 (tests/sshd.py). As root, install it when missing,
# with the system's ssh service kept from starting and left disabled; otherwise those tests skip and say why.
if [ ! -x /usr/sbin/sshd ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "test.sh: installing openssh-server for the SSH tests (the system ssh service stays off)"
  policy=/usr/sbin/policy-rc.d; made_policy=""
  if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; made_policy=1; fi
  install_sshd() { DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends openssh-server openssh-client; }
  install_sshd || { apt-get update && install_sshd; } \
    || echo "test.sh: openssh-server could not be installed; the SSH tests will be skipped" >&2
  if [ -n "$made_policy" ]; then rm -f "$policy"; fi
  systemctl disable ssh.service >/dev/null 2>&1 || true
fi
.venv/bin/python -m ruff check .
.venv/bin/python -m ruff format --check .
.venv/bin/python -m mypy                   # stylecore/, installer/, install.py and the plug-in
exec .venv/bin/python -m pytest "$@"
