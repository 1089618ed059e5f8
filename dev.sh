#!/usr/bin/env bash
# The two commands a user needs (each installs everything first, idempotently):
#   ./dev.sh demo   run three real SIP calls against the local simulated callee
#   ./dev.sh test   run the test suite (also builds .venv-coqui for the coqui-tts engine's test)
# and for developers:
#   ./dev.sh check  ruff + mypy + tests
set -euo pipefail
cd "$(dirname "$0")"
cmd=${1:-}
shift || true
case "$cmd" in
  demo)  scripts/setup.sh && exec .venv/bin/python main.py demo "$@" ;;
  test)  scripts/setup.sh --with-train --with-coqui && exec .venv/bin/python -m pytest "$@" ;;
  check) scripts/setup.sh --with-train --with-coqui && .venv/bin/ruff check . \
           && .venv/bin/ruff format --check . && .venv/bin/mypy . && exec .venv/bin/python -m pytest "$@" ;;
  *) echo "usage: ./dev.sh demo|test|check [args]" >&2; exit 2 ;;
esac
