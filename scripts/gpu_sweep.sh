#!/usr/bin/env bash
# The load sweep of bench/load.py with Whisper on a CUDA GPU (docs/capacity.md): one command,
# the same JSON on stdout (and build/bench/load-cuda/load.json + load.png).
#
#   scripts/gpu_sweep.sh                 # N = 8..100, old and new path, Whisper on cuda
#   scripts/gpu_sweep.sh --path new      # any further bench/load.py options pass through
#
# Needs: scripts/setup.sh done (the .venv, the Whisper model, kamailio), an NVIDIA driver, and
# CTranslate2's CUDA 12 runtime libraries (cuBLAS, cuDNN 9). Those come from PyPI and are
# installed into .venv on the first run (NO_GPU_LIBS_INSTALL=1: never install; bring your own
# through LD_LIBRARY_PATH). Exit: bench/load.py's code; 2 when no CUDA device is usable.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
CUBLAS=nvidia-cublas-cu12==12.9.3.13
CUDNN=nvidia-cudnn-cu12==9.27.0.42

fail() { echo "gpu_sweep: $*" >&2; exit 2; }

[ -x "$PY" ] || fail "no $PY: run scripts/setup.sh first"
[ -f build/models/whisper-base/model.bin ] || fail "no Whisper model: run scripts/setup.sh first"

if ! "$PY" -c 'import nvidia.cublas, nvidia.cudnn' >/dev/null 2>&1; then
  [ "${NO_GPU_LIBS_INSTALL:-0}" = 1 ] || "$PY" -m pip install -q "$CUBLAS" "$CUDNN" >&2 \
    || fail "could not install $CUBLAS $CUDNN"
fi
# the wheels' libraries (lib/ under each nvidia.* package) where CTranslate2 looks for them
libs=$("$PY" - <<'EOF' 2>/dev/null || true
import importlib, os
dirs = []
for name in ("nvidia.cublas", "nvidia.cudnn"):
    try:
        mod = importlib.import_module(name)
    except ImportError:
        continue
    for base in getattr(mod, "__path__", []):
        if os.path.isdir(os.path.join(base, "lib")):
            dirs.append(os.path.join(base, "lib"))
print(":".join(dirs))
EOF
)
export LD_LIBRARY_PATH="${libs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

"$PY" - <<'EOF' || fail "CTranslate2 sees no usable CUDA device (driver, cuBLAS, cuDNN?)"
import sys
import ctranslate2
if ctranslate2.get_cuda_device_count() < 1:
    sys.exit(1)
from faster_whisper import WhisperModel  # a real load: the libraries resolve, the memory fits
WhisperModel("build/models/whisper-base", device="cuda", compute_type="float16",
             local_files_only=True)
EOF

exec "$PY" bench/load.py --sweep --path both --device cuda --out build/bench/load-cuda "$@"
