#!/usr/bin/env bash
# The two commands a user needs (each installs everything first, idempotently):
#   ./dev.sh demo   run three real SIP calls against the local simulated callee
#   ./dev.sh test   the static checks (ruff lint, ruff format, mypy, import contracts), then
#                   the test suite (also builds .venv-coqui for the coqui-tts engine's test)
# and for developers:
#   ./dev.sh lint   the static checks alone (seconds)
set -euo pipefail
cd "$(dirname "$0")"
# Each check says which one failed; any failure stops the run before the tests.
lint() {
  local step
  for step in "ruff check ." "ruff format --check ." "mypy ." "lint-imports"; do
    echo "[check] $step"
    # shellcheck disable=SC2086  # the step is a command line
    .venv/bin/$step || { echo "[check] FAILED: $step" >&2; return 1; }
  done
}
cmd=${1:-}
shift || true
case "$cmd" in
  demo)  scripts/setup.sh && exec .venv/bin/python main.py demo "$@" ;;
  test|check) scripts/setup.sh --with-train --with-coqui && lint && exec .venv/bin/python -m pytest "$@" ;;
  lint)  scripts/setup.sh && lint ;;
  *) echo "usage: ./dev.sh demo|test|lint [args]" >&2; exit 2 ;;
esac
