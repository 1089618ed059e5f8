"""Export a fine-tuned HF Whisper folder to CTranslate2 (int8 by default) and check that
faster-whisper loads and runs it, offline."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from speech.adapt.data import TARGET_RATE, Clip
from speech.scoring import cer

COPIED_FILES = ("tokenizer.json", "preprocessor_config.json")
_LANGUAGE_TOKEN = re.compile(r"^<\|[a-z]{2,3}\|>$")


def export_ct2(hf_folder: Path, out: Path, *, quantization: str = "int8") -> Path:
    """Convert with ctranslate2's TransformersConverter; returns `out`."""
    from ctranslate2.converters import TransformersConverter

    present = [f for f in COPIED_FILES if (hf_folder / f).is_file()]
    converter = TransformersConverter(str(hf_folder), copy_files=present, load_as_float16=False)
    converter.convert(str(out), quantization=quantization, force=True)
    _complete_config(hf_folder, out)
    return out


def _complete_config(hf_folder: Path, out: Path) -> None:
    """A tokenizer built from tokenizer.json alone lists no language tokens, so the converter
    writes ``lang_ids: []`` (language detection would then fail): fill them in from the
    vocabulary, and make ``suppress_ids`` a list."""
    path = out / "config.json"
    config = json.loads(path.read_text("utf-8"))
    if not config.get("lang_ids"):
        vocab = json.loads((hf_folder / "tokenizer.json").read_text("utf-8"))
        tokens = {t["content"]: t["id"] for t in vocab.get("added_tokens", [])}
        start = tokens.get("<|startoftranscript|>", -1)
        config["lang_ids"] = sorted(
            i for t, i in tokens.items() if _LANGUAGE_TOKEN.match(t) and i > start
        )
    if config.get("suppress_ids") is None:
        config["suppress_ids"] = []
    path.write_text(json.dumps(config, indent=2), "utf-8")


@dataclass(frozen=True, slots=True)
class Check:
    texts: list[str]
    cer: float  # mean over the clips checked, after t2s and punctuation stripping
    rtf: float
    load_s: float


def verify(folder: Path, clips: Sequence[Clip], *, language: str = "zh", threads: int = 1) -> Check:
    """Load `folder` in faster-whisper (offline) and transcribe `clips`."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from faster_whisper import WhisperModel

    started = time.monotonic()
    model: Any = WhisperModel(str(folder), device="cpu", compute_type="int8", cpu_threads=threads)
    load_s = time.monotonic() - started
    texts: list[str] = []
    errors: list[float] = []
    audio_s = decode_s = 0.0
    for clip in clips:
        samples = clip.samples()
        t0 = time.monotonic()
        segments, _ = model.transcribe(
            samples.astype(np.float32),
            language=language,
            beam_size=1,
            without_timestamps=True,
            condition_on_previous_text=False,
            max_new_tokens=64,
        )
        text = "".join(s.text for s in list(segments)).strip()  # decode in this thread
        decode_s += time.monotonic() - t0
        audio_s += samples.size / TARGET_RATE
        texts.append(text)
        errors.append(cer(clip.text, text))
    return Check(
        texts=texts,
        cer=float(np.mean(errors)) if errors else 0.0,
        rtf=decode_s / audio_s if audio_s else 0.0,
        load_s=load_s,
    )
