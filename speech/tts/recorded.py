"""Recorded prompts: a voice talent's WAV per script line, TTS only for the variable slots.

A folder holds the recordings and a manifest (``manifest.yaml``, ``.yml`` or ``.json``)::

    voice: talent-li            # optional (default: the folder name); part of the cache key
    lines:
      您好，我是云启科技的智能助理小安。: greeting.wav            # fixed line -> its recording
      "{name}您好，我是云启科技的小安。": [hello_tail.wav]       # template: one file per
      标准版每月{price}元，八折优惠。: [price_head.wav, price_tail.wav]  # fixed part, in order

* a fixed line plays its recording (resampled to 8 kHz);
* a line that matches a template is spliced: the recorded parts, and the backup engine's
  rendering of each slot value (numbers read aloud first), trimmed at the joints, scaled to the
  speech level (RMS) of the recorded parts, with 5 ms fades so joints do not click;
* any other line (or a recording missing on disk) is rendered by the backup engine at the
  talent's level, with a warning that names the line by a hash, never by its text (PII).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from collections.abc import AsyncGenerator, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from core.audio import SAMPLE_RATE
from core.yamlload import YamlLoadError, load_yaml
from speech import audio
from speech.tts.base import TtsEngine
from speech.tts.frames import stream_clauses
from speech.tts.normalize import normalize_for_tts

log = logging.getLogger(__name__)

MANIFEST_NAMES: Final = ("manifest.yaml", "manifest.yml", "manifest.json")
_SLOT: Final = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_LEVEL_FRAME_S: Final = 0.02
_ACTIVE_RANGE_DB: Final = 30.0  # frames within 30 dB of the loudest count as speech
_TRIM_DBFS: Final = -45.0
_KEEP_S: Final = 0.04  # silence kept at a trimmed joint
_FADE_S: Final = 0.005


class ManifestError(ValueError):
    """The recordings manifest is missing or malformed."""


# --- level, trimming, joints (pure numpy helpers on PCM16 bytes) -------------------------------


def _frame_levels(pcm: bytes, sample_rate: int) -> np.ndarray:
    x = audio.pcm16_to_float(pcm).astype(np.float64)
    n = max(1, int(_LEVEL_FRAME_S * sample_rate))
    usable = x[: x.size // n * n].reshape(-1, n)
    return np.sqrt(np.mean(usable * usable, axis=1)) if usable.size else np.zeros(0)


def speech_rms(pcm: bytes, sample_rate: int = SAMPLE_RATE) -> float:
    """RMS over the speech frames only (within 30 dB of the loudest 20 ms frame), so pauses
    and leading/trailing silence do not lower the level. 0.0 for silence."""
    levels = _frame_levels(pcm, sample_rate)
    if not levels.size or levels.max() <= 0:
        return 0.0
    active = levels[levels >= levels.max() * 10 ** (-_ACTIVE_RANGE_DB / 20)]
    return float(np.sqrt(np.mean(active * active)))


def match_level(pcm: bytes, target_rms: float, sample_rate: int = SAMPLE_RATE) -> bytes:
    """Scale `pcm` so its speech RMS equals `target_rms` (clipped at full scale)."""
    level = speech_rms(pcm, sample_rate)
    if level <= 0 or target_rms <= 0:
        return pcm
    return audio.float_to_pcm16(audio.pcm16_to_float(pcm) * (target_rms / level))


def trim(pcm: bytes, sample_rate: int, *, head: bool, tail: bool) -> bytes:
    """Cut silence below -45 dBFS at the chosen ends, keeping 40 ms."""
    levels = _frame_levels(pcm, sample_rate)
    loud = np.flatnonzero(levels >= 10 ** (_TRIM_DBFS / 20))
    if not loud.size:
        return pcm
    n = int(_LEVEL_FRAME_S * sample_rate)
    keep = int(_KEEP_S * sample_rate)
    start = max(0, loud[0] * n - keep) if head else 0
    end = min(len(pcm) // 2, (loud[-1] + 1) * n + keep) if tail else len(pcm) // 2
    return pcm[start * 2 : end * 2]


def fade(pcm: bytes, sample_rate: int, *, head: bool, tail: bool) -> bytes:
    """5 ms linear fade-in/out at the chosen ends."""
    x = audio.pcm16_to_float(pcm).copy()
    n = min(int(_FADE_S * sample_rate), x.size // 2)
    if n:
        ramp = np.linspace(0.0, 1.0, n, endpoint=False, dtype=np.float32)
        if head:
            x[:n] *= ramp
        if tail:
            x[-n:] *= ramp[::-1]
    return audio.float_to_pcm16(x)


# --- manifest ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Part:
    text: str  # the fixed text, or the slot name when `slot`
    slot: bool
    file: Path | None = None  # the recording of a fixed part


@dataclass(frozen=True, slots=True)
class Template:
    source: str
    parts: tuple[Part, ...]
    pattern: re.Pattern[str]

    def match(self, text: str) -> dict[str, str] | None:
        found = self.pattern.fullmatch(text)
        return None if found is None else found.groupdict()


def _canonical(text: str) -> str:
    return " ".join(text.split())


def _template(source: str, files: list[Path]) -> Template:
    parts: list[Part] = []
    regex: list[str] = []
    pos = 0
    fixed: list[str] = []
    for slot in _SLOT.finditer(source):
        if slot.start() > pos:
            fixed.append(source[pos : slot.start()])
            parts.append(Part(source[pos : slot.start()], slot=False))
        if slot[1] in {p.text for p in parts if p.slot}:
            raise ManifestError(f"template {source!r}: slot {{{slot[1]}}} appears twice")
        parts.append(Part(slot[1], slot=True))
        pos = slot.end()
    if pos < len(source):
        fixed.append(source[pos:])
        parts.append(Part(source[pos:], slot=False))
    if len(files) != len(fixed):
        raise ManifestError(
            f"template {source!r} has {len(fixed)} fixed parts but {len(files)} recordings"
        )
    it = iter(files)
    bound = tuple(p if p.slot else Part(p.text, slot=False, file=next(it)) for p in parts)
    for p in bound:
        regex.append(f"(?P<{p.text}>.+?)" if p.slot else re.escape(_canonical(p.text)))
    return Template(source, bound, re.compile("".join(regex), re.DOTALL))


@dataclass(frozen=True, slots=True)
class Manifest:
    folder: Path
    voice: str
    lines: Mapping[str, Path]  # canonical fixed text -> recording
    templates: tuple[Template, ...]  # most fixed text first (most specific wins)
    digest: str  # of the manifest and every recording's size and mtime

    def files(self) -> set[Path]:
        out = set(self.lines.values())
        out.update(p.file for t in self.templates for p in t.parts if p.file is not None)
        return out


def _find_manifest(folder: Path) -> Path:
    if folder.is_file():
        return folder
    for name in MANIFEST_NAMES:
        if (folder / name).is_file():
            return folder / name
    raise ManifestError(f"no {' / '.join(MANIFEST_NAMES)} in {folder}")


def load_manifest(path: str | Path) -> Manifest:
    """Read and validate a manifest (a folder holding one, or the file itself)."""
    file = _find_manifest(Path(path))
    raw = file.read_bytes()
    try:
        data: Any = (
            json.loads(raw)
            if file.suffix == ".json"
            else load_yaml(file, what="recordings manifest")
        )
    except (YamlLoadError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{file.name}: {exc}") from None
    if not isinstance(data, Mapping) or not isinstance(data.get("lines"), Mapping):
        raise ManifestError(f"{file.name}: expected a mapping with a 'lines' mapping")
    folder = file.parent
    lines: dict[str, Path] = {}
    templates: list[Template] = []
    for text, value in data["lines"].items():
        files = [value] if isinstance(value, str) else value
        if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
            raise ManifestError(f"{file.name}: a line maps to a file name or a list of them")
        paths = [folder / f for f in files]
        if _SLOT.search(str(text)):
            templates.append(_template(str(text), paths))
        elif len(paths) != 1:
            raise ManifestError(f"{file.name}: a fixed line has exactly one recording")
        else:
            lines[_canonical(str(text))] = paths[0]
    templates.sort(key=lambda t: -sum(len(p.text) for p in t.parts if not p.slot))
    digest = hashlib.sha256(raw)
    for f in sorted({*lines.values(), *(p.file for t in templates for p in t.parts if p.file)}):
        stat = f.stat() if f.is_file() else None
        digest.update(f"{f.name}:{stat.st_size}:{stat.st_mtime_ns}".encode() if stat else b"-")
    voice = str(data.get("voice") or folder.name)
    return Manifest(folder, voice, lines, tuple(templates), digest.hexdigest()[:16])


# --- the engine --------------------------------------------------------------------------------


def _line_id(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


class RecordedTts:
    """TtsEngine playing a voice talent's recordings, `backup` synthesizing the rest."""

    name = "recorded"

    def __init__(
        self,
        folder: str | Path,
        *,
        backup: TtsEngine,
        sample_rate: int = SAMPLE_RATE,
    ) -> None:
        self.manifest = load_manifest(folder)
        self.backup = backup
        self.sample_rate = sample_rate
        self.voice = self.manifest.voice
        self.version = (
            f"rec-{self.manifest.digest};r{sample_rate};"
            f"backup={backup.name}:{backup.voice}:{backup.version}"
        )
        self._pcm: dict[Path, bytes | None] = {}  # None: missing or unreadable
        self._reference_rms = 0.0
        self._loaded = asyncio.Lock()
        self._warned: set[str] = set()

    # --- recordings ----------------------------------------------------------------------

    def _read(self, path: Path) -> bytes | None:
        try:
            wav = audio.read_wav(path)
        except (OSError, ValueError) as exc:
            log.warning("recording unusable", extra={"file": path.name, "error": str(exc)})
            return None
        return audio.resample_pcm16(wav.pcm, wav.sample_rate, self.sample_rate)

    def _load_all(self) -> None:
        for path in sorted(self.manifest.files()):
            self._pcm[path] = self._read(path)
        levels = [speech_rms(p, self.sample_rate) for p in self._pcm.values() if p]
        self._reference_rms = float(np.median(levels)) if levels else 0.0

    async def load(self) -> None:
        """Read and resample every recording (once, in a worker thread)."""
        async with self._loaded:
            if not self._pcm:
                await asyncio.to_thread(self._load_all)

    @property
    def reference_rms(self) -> float:
        """Median speech RMS of the recordings: the level backup renders are scaled to."""
        return self._reference_rms

    def missing(self) -> list[Path]:
        """Recordings named in the manifest that could not be read (after `load`)."""
        return sorted(path for path, pcm in self._pcm.items() if pcm is None)

    def has_recording(self, text: str) -> bool:
        """True when `text` is a recorded fixed line or matches a template."""
        key = _canonical(text)
        return key in self.manifest.lines or any(t.match(key) for t in self.manifest.templates)

    # --- rendering -------------------------------------------------------------------------

    def _warn_fallback(self, text: str, reason: str) -> None:
        line = _line_id(text)
        if line not in self._warned:
            self._warned.add(line)
            log.warning(
                "recorded prompt unavailable; using backup TTS",
                extra={"line_id": line, "reason": reason, "backup": self.backup.name},
            )

    async def _backup(self, text: str, target_rms: float) -> bytes:
        pcm = await self.backup.synthesize(normalize_for_tts(text))
        rate = getattr(self.backup, "sample_rate", self.sample_rate)
        if rate != self.sample_rate:
            pcm = await asyncio.to_thread(audio.resample_pcm16, pcm, rate, self.sample_rate)
        return match_level(pcm, target_rms, self.sample_rate)

    async def _fallback(self, text: str) -> bytes:
        return await self._backup(text, self._reference_rms)

    def _lookup(self, text: str) -> tuple[bytes | None, Template | None, dict[str, str], str]:
        """(recording, None, {}, "") for a fixed line, (None, template, slot values, "") for a
        template line, (None, None, {}, reason) when the backup engine must render it."""
        key = _canonical(text)
        path = self.manifest.lines.get(key)
        if path is not None:
            pcm = self._pcm.get(path)
            return (pcm, None, {}, "") if pcm is not None else (None, None, {}, "file")
        for template in self.manifest.templates:
            values = template.match(key)
            if values is not None:
                if any(self._pcm.get(p.file) is None for p in template.parts if p.file):
                    return None, None, {}, "file"
                return None, template, values, ""
        return None, None, {}, "no_recording"

    async def uncovered(self, texts: Iterable[str]) -> list[str]:
        """Ids (hashes) of the lines among `texts` that the backup engine would render."""
        await self.load()
        return [_line_id(t) for t in dict.fromkeys(texts) if self._lookup(t)[3]]

    def _joint(self, pcm: bytes, *, head: bool, tail: bool) -> bytes:
        return fade(trim(pcm, self.sample_rate, head=head, tail=tail), self.sample_rate,
                    head=head, tail=tail)  # fmt: skip

    async def _spliced_parts(
        self, template: Template, values: dict[str, str]
    ) -> AsyncGenerator[bytes, None]:
        """The parts of a template line, in order, joints trimmed and faded, slots level-matched;
        every slot starts rendering at once."""
        recorded = [self._pcm[p.file] for p in template.parts if p.file is not None]
        target = speech_rms(b"".join(p for p in recorded if p), self.sample_rate)
        renders = {
            p.text: asyncio.ensure_future(self._backup(values[p.text], target))
            for p in template.parts
            if p.slot
        }
        try:
            last = len(template.parts) - 1
            for i, part in enumerate(template.parts):
                head, tail = i > 0, i < last
                if part.slot:
                    pcm = await renders[part.text]
                    yield self._joint(pcm, head=True, tail=True)
                else:
                    assert part.file is not None
                    yield self._joint(self._pcm[part.file] or b"", head=head, tail=tail)
        finally:
            for task in renders.values():
                task.cancel()

    async def _parts(self, text: str) -> AsyncGenerator[bytes, None]:
        await self.load()
        pcm, template, values, reason = self._lookup(text)
        if reason:
            self._warn_fallback(text, reason)
            async for frame in stream_clauses(self._fallback, text, sample_rate=self.sample_rate):
                yield frame
        elif template is not None:
            async for part in self._spliced_parts(template, values):
                yield part
        elif pcm is not None:
            yield pcm

    async def synthesize(self, text: str) -> bytes:
        """PCM16 mono at `sample_rate`: the recording, a splice, or the backup's rendering."""
        await self.load()
        pcm, template, values, reason = self._lookup(text)
        if reason:
            self._warn_fallback(text, reason)
            return await self._fallback(text)
        if template is not None:
            return b"".join([part async for part in self._spliced_parts(template, values)])
        return pcm or b""

    async def synthesize_stream(self, text: str) -> AsyncGenerator[bytes, None]:
        """20 ms frames: a recording starts at once; a splice plays its first recorded part
        while the slots render; a fallback streams clause by clause."""
        size = audio.frame_bytes_for(self.sample_rate)
        buffer = b""
        async for part in self._parts(text):
            buffer += part
            whole = len(buffer) - len(buffer) % size
            for start in range(0, whole, size):
                yield buffer[start : start + size]
            buffer = buffer[whole:]
        if buffer:
            yield buffer + b"\x00" * (size - len(buffer))
