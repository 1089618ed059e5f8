"""ASR adaptation: data loading and augmentation (numpy), and the whole pipeline end to end on
espeak clips with a tiny randomly initialized Whisper (needs requirements-train.txt)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from speech import audio
from speech.adapt import (
    AugmentConfig,
    Clip,
    DataError,
    add_noise,
    augment,
    load_clips,
    phone_band,
    speed_perturb,
)
from speech.adapt.cli import main as adapt_main

TOKENIZER = Path("build/models/whisper-base/tokenizer.json")
TRAIN_MODULES = ("torch", "transformers", "ctranslate2", "faster_whisper")
_missing = [m for m in TRAIN_MODULES if importlib.util.find_spec(m) is None]
needs_training = pytest.mark.skipif(
    bool(_missing),
    reason=f"{', '.join(_missing)} not installed (pip install torch==2.13.0 && "
    "pip install -r requirements-train.txt)",
)
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")
needs_tokenizer = pytest.mark.skipif(
    not TOKENIZER.is_file(), reason=f"{TOKENIZER} missing (scripts/install_models.py makes it)"
)

CLIPS = [
    ("a.wav", "好的，你说吧", ""),
    ("b.wav", "我现在没有时间", "yue"),
    ("c.wav", "多少钱", ""),
    ("d.wav", "不用了，谢谢", "cantonese"),
]


def _tone(seconds: float, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def _write_tone_clips(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for name, text, dialect in CLIPS:
        audio.write_wav(folder / name, audio.float_to_pcm16(_tone(1.0, 8000)), 8000)
        lines.append(f"{name}\t{text}\t{dialect}")
    (folder / "metadata.tsv").write_text("# file\ttext\tdialect\n" + "\n".join(lines), "utf-8")


def test_load_clips_from_tsv_and_sidecars(tmp_path: Path) -> None:
    _write_tone_clips(tmp_path)
    audio.write_wav(tmp_path / "e.wav", audio.silence(0.5), 8000)
    (tmp_path / "e.txt").write_text("喂，你好\n", "utf-8")
    (tmp_path / "e.dialect").write_text("四川话", "utf-8")
    clips = load_clips(tmp_path)
    assert [c.text for c in clips] == [t for _, t, _ in CLIPS] + ["喂，你好"]
    assert [c.dialect for c in clips] == [None, "yue", None, "yue", "southwestern"]
    samples = clips[0].samples()
    assert samples.dtype == np.float32 and samples.size == 16000  # resampled to 16 kHz


@pytest.mark.parametrize(
    ("tsv", "error"),
    [("x.wav\t你好\n", "missing"), ("x.wav\n", "expected file"), ("", "no clips")],
)
def test_load_clips_errors(tmp_path: Path, tsv: str, error: str) -> None:
    (tmp_path / "metadata.tsv").write_text(tsv, "utf-8")
    with pytest.raises(DataError, match=error):
        load_clips(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        load_clips(tmp_path / "nowhere")


def test_augmentations() -> None:
    x = _tone(1.0)
    assert speed_perturb(x, 1.1).size == pytest.approx(16000 / 1.1, abs=2)
    assert speed_perturb(x, 0.9).size == pytest.approx(16000 / 0.9, abs=2)
    noise = np.random.default_rng(0).standard_normal(4000).astype(np.float32)
    noisy = add_noise(x, noise, 10.0)
    snr = 10 * np.log10(np.mean(x.astype(np.float64) ** 2) / np.mean((noisy - x) ** 2.0))
    assert snr == pytest.approx(10.0, abs=0.3)
    band = phone_band(x)
    assert band.size == pytest.approx(x.size, abs=4)
    assert float(np.corrcoef(band[200:-200], x[200:-200])[0, 1]) > 0.95


def test_augment_makes_one_example_per_speed_with_dialect_text() -> None:
    clip = Clip(Path("x.wav"), "不用了，我现在没时间", "yue")
    config = AugmentConfig(noise_probability=1.0, phone_band_probability=1.0,
                           dialect_probability=1.0)  # fmt: skip
    examples = augment(clip, _tone(1.0), others=[_tone(0.5)], config=config,
                       rng=random.Random(1))  # fmt: skip
    assert len(examples) == 3
    for example in examples:
        assert example.text != clip.text and "g711" in example.tags
        assert "dialect-yue" in example.tags
        assert {"noise", "babble"} & set(example.tags)
    from core.dialect import normalize_dialect

    assert {normalize_dialect(e.text, "yue") for e in examples} == {clip.text}


def test_cli_reports_missing_deps_or_bad_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = adapt_main(["--data", str(tmp_path / "none"), "--base", str(tmp_path),
                     "--out", str(tmp_path / "out")])  # fmt: skip
    assert rc == 2
    err = capsys.readouterr().err
    assert ("requirements-train.txt" in err) if _missing else ("does not exist" in err)


async def _espeak_clips(folder: Path) -> None:
    from speech.tts.espeak import EspeakTts

    mandarin, cantonese = EspeakTts(speed=150), EspeakTts("yue", speed=150)
    lines = []
    for name, text, dialect in CLIPS:
        tts = cantonese if dialect else mandarin
        rendered = await tts.synthesize_native(text)
        audio.write_wav(folder / name, rendered.pcm, rendered.sample_rate)  # 22.05 kHz
        lines.append(f"{name}\t{text}\t{dialect}")
    (folder / "metadata.tsv").write_text("\n".join(lines), "utf-8")


@needs_training
@needs_espeak
@needs_tokenizer
def test_adapt_end_to_end_on_a_tiny_random_whisper(tmp_path: Path) -> None:
    from speech.adapt.tiny import make_tiny_whisper

    data = tmp_path / "data"
    data.mkdir()
    asyncio.run(_espeak_clips(data))
    base = make_tiny_whisper(tmp_path / "base", TOKENIZER)
    out = tmp_path / "out"
    rc = adapt_main([
        "--data", str(data), "--base", str(base), "--out", str(out), "--epochs", "3",
        "--batch-size", "4", "--lr", "3e-3", "--speeds", "0.9,1.1", "--threads", "2",
    ])  # fmt: skip
    assert rc == 0
    report = json.loads((out / "adapt-report.json").read_text("utf-8"))
    assert report["clips"] == 4 and report["examples"] == 8 and report["steps"] == 6
    assert report["loss_last"] < report["loss_first"]
    assert report["augmentations"]["speed0.9"] == 4
    assert report["augmentations"].get("dialect-yue", 0) >= 1
    assert report["check"]["clips"] == 4 and report["check"]["rtf"] > 0
    for name in ("model.bin", "config.json", "tokenizer.json", "preprocessor_config.json"):
        assert (out / name).is_file()
    ct2_config = json.loads((out / "config.json").read_text("utf-8"))
    assert len(ct2_config["lang_ids"]) >= 99  # language detection works too
    assert (out / "hf" / "model.safetensors").is_file()

    from faster_whisper import WhisperModel  # the ASR engine's loader, offline

    model = WhisperModel(str(out), device="cpu", compute_type="int8", cpu_threads=1)
    segments, info = model.transcribe(np.zeros(16000, np.float32), language="zh",
                                      max_new_tokens=8, without_timestamps=True)  # fmt: skip
    assert isinstance("".join(s.text for s in list(segments)), str) and info.language == "zh"
