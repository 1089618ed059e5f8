"""Data augmentation for ASR adaptation (numpy only).

* speed perturbation: resampling by 0.9 / 1.0 / 1.1 (tempo and pitch change together, as in
  Kaldi's 3-way speed perturbation);
* noise injection: white or babble noise (other clips mixed in) at a random SNR;
* telephone band: 16 kHz -> 8 kHz -> G.711 mu-law -> 16 kHz, the channel the robot hears;
* dialect synonym replacement (text side): Mandarin words in a dialect clip's transcript are
  replaced by that dialect's words (``core.dialect`` in reverse), so the recognizer learns to
  write what was said; the NLU maps it back to Mandarin (``core.dialect.normalize_dialect``).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.audio import SAMPLE_RATE
from core.dialect import to_dialect
from speech import audio
from speech.adapt.data import TARGET_RATE, Clip


@dataclass(frozen=True, slots=True)
class AugmentConfig:
    speeds: tuple[float, ...] = (0.9, 1.0, 1.1)
    noise_probability: float = 0.5
    snr_db: tuple[float, float] = (10.0, 30.0)
    babble_probability: float = 0.3  # of the noisy copies, how many get babble, not white noise
    phone_band_probability: float = 0.5
    dialect_probability: float = 0.5  # per replaceable word, in clips tagged with a dialect
    dialect: str | None = None  # treat every clip as this dialect (for text replacement)


@dataclass(frozen=True, slots=True)
class Example:
    samples: np.ndarray  # float32 at 16 kHz
    text: str
    tags: tuple[str, ...]  # what was applied, for the report


def speed_perturb(x: np.ndarray, factor: float) -> np.ndarray:
    """Play `x` `factor` times faster (duration / factor)."""
    if factor == 1.0:
        return x
    return audio.resample_float(x, int(round(TARGET_RATE * factor)), TARGET_RATE)


def add_noise(x: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """Mix `noise` (tiled or cut to length) into `x` at `snr_db`."""
    if not x.size:
        return x
    reps = int(np.ceil(x.size / max(1, noise.size)))
    n = np.tile(noise, reps)[: x.size].astype(np.float32)
    p_signal = float(np.mean(x.astype(np.float64) ** 2))
    p_noise = float(np.mean(n.astype(np.float64) ** 2))
    if p_signal == 0 or p_noise == 0:
        return x
    gain = np.sqrt(p_signal / (p_noise * 10 ** (snr_db / 10)))
    return np.clip(x + gain * n, -1.0, 1.0).astype(np.float32)


def phone_band(x: np.ndarray) -> np.ndarray:
    """What `x` sounds like after a G.711 telephone leg, back at 16 kHz."""
    pcm = audio.float_to_pcm16(audio.resample_float(x, TARGET_RATE, SAMPLE_RATE))
    back = audio.pcm16_to_float(audio.ulaw_roundtrip(pcm))
    return audio.resample_float(back, SAMPLE_RATE, TARGET_RATE)


def augment(
    clip: Clip,
    samples: np.ndarray,
    *,
    others: Sequence[np.ndarray],
    config: AugmentConfig,
    rng: random.Random,
) -> list[Example]:
    """One example per speed factor, each maybe noisy / telephone-band / dialect-worded."""
    out: list[Example] = []
    dialect = config.dialect or clip.dialect
    for speed in config.speeds:
        x = speed_perturb(samples, speed)
        tags = [f"speed{speed:g}"]
        if rng.random() < config.noise_probability:
            lo, hi = config.snr_db
            snr = rng.uniform(lo, hi)
            if others and rng.random() < config.babble_probability:
                noise = others[rng.randrange(len(others))]
                tags.append("babble")
            else:
                noise = np.asarray(
                    np.random.default_rng(rng.randrange(2**32)).standard_normal(x.size),
                    dtype=np.float32,
                )
                tags.append("noise")
            x = add_noise(x, noise, snr)
        if rng.random() < config.phone_band_probability:
            x = phone_band(x)
            tags.append("g711")
        text = clip.text
        if dialect:
            worded = to_dialect(text, dialect, rng=rng, probability=config.dialect_probability)
            if worded != text:
                tags.append(f"dialect-{dialect}")
            text = worded
        out.append(Example(x.astype(np.float32), text, tuple(tags)))
    return out
