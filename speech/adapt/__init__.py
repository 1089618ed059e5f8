"""ASR adaptation: fine-tune Whisper on (audio, text) pairs with speed perturbation, noise
injection, telephone-band and dialect synonym replacement, export to CTranslate2 int8, check in
faster-whisper. ``python -m speech.adapt --data DIR --base MODEL_DIR --out OUT_DIR``.

Importing this package needs numpy only; ``run_adapt`` needs requirements-train.txt (torch,
transformers, ctranslate2, faster-whisper) and says so when they are missing.
"""

from __future__ import annotations

from speech.adapt.augment import AugmentConfig, add_noise, augment, phone_band, speed_perturb
from speech.adapt.data import Clip, DataError, load_clips
from speech.adapt.pipeline import AdaptConfig, MissingTrainingDeps, require_training_deps, run_adapt
from speech.adapt.train import TrainConfig

__all__ = [
    "AdaptConfig",
    "AugmentConfig",
    "Clip",
    "DataError",
    "MissingTrainingDeps",
    "TrainConfig",
    "add_noise",
    "augment",
    "load_clips",
    "phone_band",
    "require_training_deps",
    "run_adapt",
    "speed_perturb",
]
