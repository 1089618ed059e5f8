"""Training data for ASR adaptation: (audio, text[, dialect]) pairs from a folder.

Two layouts are read (both may be mixed):

* ``metadata.tsv``: ``file<TAB>text[<TAB>dialect]`` per line (``#`` comments allowed), file
  names relative to the folder;
* ``NAME.wav`` next to ``NAME.txt`` (the transcript; dialect from an optional ``NAME.dialect``).

Audio: PCM16 WAV at any sample rate (telephone recordings at 8 kHz are fine), mono or stereo.
Transcripts are Mandarin as it should come out of the recognizer (simplified characters).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.dialect import canonical_dialect
from speech import audio

TARGET_RATE = audio.WHISPER_RATE


class DataError(ValueError):
    """The data folder is missing, empty or inconsistent."""


@dataclass(frozen=True, slots=True)
class Clip:
    path: Path
    text: str
    dialect: str | None = None

    def samples(self) -> np.ndarray:
        """float32 mono samples at 16 kHz."""
        wav = audio.read_wav(self.path)
        x = audio.pcm16_to_float(wav.pcm)
        return audio.resample_float(x, wav.sample_rate, TARGET_RATE)


def _from_tsv(folder: Path, tsv: Path) -> list[Clip]:
    clips: list[Clip] = []
    for number, line in enumerate(tsv.read_text("utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) < 2 or not fields[1].strip():
            raise DataError(f"{tsv.name}:{number}: expected file<TAB>text[<TAB>dialect]")
        dialect = canonical_dialect(fields[2].strip()) if len(fields) > 2 and fields[2] else None
        clips.append(Clip(folder / fields[0].strip(), fields[1].strip(), dialect))
    return clips


def _from_sidecars(folder: Path) -> list[Clip]:
    clips: list[Clip] = []
    for wav in sorted(folder.glob("*.wav")):
        txt = wav.with_suffix(".txt")
        if not txt.is_file():
            continue
        tag = wav.with_suffix(".dialect")
        dialect = canonical_dialect(tag.read_text("utf-8").strip()) if tag.is_file() else None
        clips.append(Clip(wav, txt.read_text("utf-8").strip(), dialect))
    return clips


def load_clips(folder: str | Path) -> list[Clip]:
    """Every (audio, text) pair in `folder`; raises DataError when there is none or a file
    named in metadata.tsv is missing."""
    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist")
    tsv = root / "metadata.tsv"
    clips = _from_tsv(root, tsv) if tsv.is_file() else []
    listed = {c.path for c in clips}
    clips += [c for c in _from_sidecars(root) if c.path not in listed]
    missing = [c.path.name for c in clips if not c.path.is_file()]
    if missing:
        raise DataError(f"{len(missing)} audio file(s) missing, e.g. {missing[0]}")
    if not clips:
        raise DataError(f"no clips in {root} (metadata.tsv, or NAME.wav + NAME.txt)")
    return clips
