#!/usr/bin/env bash
# The project's test command (README, .ci/run): installs everything the tests
# need on a fresh Debian machine — the Python venv with the test extras, the
# Debian servers (memcached, redis-server) and the npm clients — then runs the
# linters and the whole suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -c constraints.txt -e '.[test]'
scripts/install-test-deps.sh

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
exec .venv/bin/python -m pytest "$@"
