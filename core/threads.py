"""Native thread pools sized before numpy loads them.

OpenBLAS and OpenMP start one thread per core the first time numpy (or onnxruntime, or
CTranslate2's feature code) multiplies a matrix. In a node those threads only spin: Whisper's
feature extraction used as much CPU again as Whisper itself (10 decodes: 1.55 s of CPU with
the default, 0.74 s with one thread). Every process of ours that composes a node calls
``pin_native_threads()`` before numpy is imported (``app/__init__.py``); media workers inherit
the environment. A variable already set wins, so ``OPENBLAS_NUM_THREADS=2 main.py run`` (or
bench/load.py's old path) gets the unpinned behaviour back.
"""

from __future__ import annotations

import os

NATIVE_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def pin_native_threads(threads: int = 1) -> None:
    """Size the BLAS/OpenMP pools (unless the environment already does); effective only
    before the libraries load, i.e. before numpy's first import in this process."""
    for var in NATIVE_THREAD_VARS:
        os.environ.setdefault(var, str(threads))
