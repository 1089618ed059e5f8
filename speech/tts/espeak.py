"""espeak-ng TTS: robotic but free, offline and fast (RTF ~0.01).

Mandarin goes through the ``cmn-latn-pinyin`` voice fed with pinyin + tone numbers (the
default ``cmn`` voice in Debian's espeak-ng 1.51 reads tone digits in English, so it is refused).
Cantonese (``yue``) reads Chinese characters directly. espeak-ng runs as an async subprocess;
its WAV (22.05 kHz) is resampled to 8 kHz PCM16 by sox (without dither, so output is
repeatable) when installed, else by numpy in a worker thread; nothing blocks the event loop.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from collections.abc import AsyncGenerator
from typing import Final

from pypinyin import Style, lazy_pinyin

from core.audio import SAMPLE_RATE
from speech import audio
from speech.tts.frames import stream_clauses
from speech.tts.normalize import normalize_for_tts

MANDARIN_VOICE: Final = "cmn-latn-pinyin"
CANTONESE_VOICE: Final = "yue"
SUPPORTED_VOICES: Final = (MANDARIN_VOICE, CANTONESE_VOICE)
_FRONTEND_VERSION: Final = "3"  # bump when to_phonetic() output changes

# Punctuation that becomes a phrase break ("," short pause, "." long pause, "?" question).
_PAUSES: Final = {
    "，": ",", "、": ",", "；": ",", "：": ",", ",": ",", ";": ",", ":": ",",
    "。": ".", "！": ".", "!": ".", ".": ".", "…": ".",
    "？": "?", "?": "?",
}  # fmt: skip
_LATIN_WORD = re.compile(r"[A-Za-z]+")
_SYLLABLE = re.compile(r"^[a-zü]+[1-5]$")


class EspeakError(RuntimeError):
    """espeak-ng or sox is missing, refused the input, or failed."""


def _chunk_to_tokens(chunk: str) -> list[str]:
    """Non-Chinese text from pypinyin -> pause marks and Latin words.

    Acronyms (all caps, up to 4 letters, e.g. "AI") are spelled letter by letter, which the
    pinyin voice reads with letter names; other Latin words pass through lowercased.
    """
    tokens: list[str] = []
    pos = 0
    while pos < len(chunk):
        char = chunk[pos]
        word = _LATIN_WORD.match(chunk, pos)
        if word:
            text = word.group(0)
            if text.isupper() and len(text) <= 4:
                tokens.extend(text.lower())
            else:
                tokens.append(text.lower())
            pos = word.end()
            continue
        if char in _PAUSES:
            tokens.append(_PAUSES[char])
        pos += 1
    return tokens


def to_pinyin(text: str) -> str:
    """Chinese text -> espeak ``cmn-latn-pinyin`` input: "ni3 hao3 , qing3 jiang3".

    Digits are spelled in Chinese first; 不/一 tone sandhi is applied (espeak does 3-3
    sandhi itself); the neutral tone is 5; punctuation becomes phrase breaks.
    """
    syllables = lazy_pinyin(
        normalize_for_tts(text),
        style=Style.TONE3,
        neutral_tone_with_five=True,
        tone_sandhi=True,
        errors="default",  # non-Chinese runs come back verbatim
    )
    tokens: list[str] = []
    for item in syllables:
        item = item.strip()
        if _SYLLABLE.match(item):
            tokens.append(item.replace("ü", "v"))
        elif item:
            tokens.extend(_chunk_to_tokens(item))
    # collapse repeated/leading pauses, attach pauses to the previous word
    out: list[str] = []
    for token in tokens:
        if token in ",.?":
            if out and out[-1][-1] not in ",.?":
                out[-1] += token
        else:
            out.append(token)
    return " ".join(out)


def _espeak_version(executable: str) -> str:
    try:
        result = subprocess.run(
            [executable, "--version"], capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise EspeakError(
            f"{executable} not usable ({exc}); install the Debian package espeak-ng"
        ) from exc
    match = re.search(r"(\d+\.\d+(?:\.\d+)?)", result.stdout)
    return match.group(1) if match else result.stdout.strip()[:40]


class EspeakTts:
    """TtsEngine over espeak-ng. Construct once per process and share it."""

    name = "espeak"

    def __init__(
        self,
        voice: str = MANDARIN_VOICE,
        *,
        speed: int = 150,
        pitch: int = 50,
        word_gap: int = 0,
        variant: str | None = None,
        sample_rate: int = SAMPLE_RATE,
        executable: str = "espeak-ng",
        use_sox: bool | None = None,
        max_concurrency: int = 4,
        timeout_s: float = 10.0,
    ) -> None:
        if voice == "cmn" or voice.startswith(("cmn+", "zh")):
            raise ValueError(
                "espeak-ng voice 'cmn' is broken in Debian's espeak-ng (reads tone digits in "
                f"English); use voice={MANDARIN_VOICE!r} (pinyin input) instead"
            )
        if voice not in SUPPORTED_VOICES:
            raise ValueError(f"unsupported voice {voice!r}; choose one of {SUPPORTED_VOICES}")
        if not 80 <= speed <= 450 or not 0 <= pitch <= 99 or word_gap < 0:
            raise ValueError("speed must be 80..450 wpm, pitch 0..99, word_gap >= 0")
        self.voice = voice
        self.speed = speed
        self.pitch = pitch
        self.word_gap = word_gap
        self.variant = variant
        self.sample_rate = sample_rate
        self._executable = executable
        self._sox = shutil.which("sox") if use_sox is not False else None
        if use_sox and not self._sox:
            raise EspeakError("use_sox=True but sox is not installed (Debian package sox)")
        self._timeout_s = timeout_s
        self._slots = asyncio.Semaphore(max_concurrency)
        engine_version = _espeak_version(executable)
        self.version = (
            f"espeak-ng-{engine_version};fe{_FRONTEND_VERSION};s{speed};p{pitch};"
            f"g{word_gap};v{variant or '-'};r{sample_rate}"
        )

    def to_phonetic(self, text: str) -> str:
        """The exact text handed to espeak-ng for `text`."""
        if self.voice == MANDARIN_VOICE:
            return to_pinyin(text)
        return normalize_for_tts(text).strip()

    def _command(self) -> list[str]:
        voice = f"{self.voice}+{self.variant}" if self.variant else self.voice
        return [
            self._executable, "-v", voice, "-s", str(self.speed), "-p", str(self.pitch),
            "-g", str(self.word_gap), "--stdout", "--stdin",
        ]  # fmt: skip

    async def _run(self, argv: list[str], stdin: bytes) -> bytes:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(stdin), self._timeout_s)
        except BaseException:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            raise
        if proc.returncode != 0:
            detail = err.decode(errors="replace").strip()[:200]
            raise EspeakError(f"{argv[0]} exited with {proc.returncode}: {detail}")
        return out

    async def synthesize_native(self, text: str) -> audio.WavAudio:
        """Render at espeak's own rate (22.05 kHz), no resampling."""
        phonetic = self.to_phonetic(text)
        if not phonetic:
            return audio.WavAudio(b"", 22050)
        async with self._slots:
            wav = await self._run(self._command(), phonetic.encode())
        return audio.parse_wav(wav)

    async def synthesize(self, text: str) -> bytes:
        """Render `text` as PCM16 mono at `sample_rate` (8 kHz by default)."""
        rendered = await self.synthesize_native(text)
        if not rendered.pcm or rendered.sample_rate == self.sample_rate:
            return rendered.pcm
        if self._sox:
            argv = [
                self._sox, "-q", "-D", "-t", "raw", "-r", str(rendered.sample_rate), "-e", "signed",
                "-b", "16", "-c", "1", "-", "-t", "raw", "-r", str(self.sample_rate),
                "-e", "signed", "-b", "16", "-c", "1", "-",
            ]  # fmt: skip
            async with self._slots:
                return await self._run(argv, rendered.pcm)
        return await asyncio.to_thread(
            audio.resample_pcm16, rendered.pcm, rendered.sample_rate, self.sample_rate
        )

    async def synthesize_stream(self, text: str) -> AsyncGenerator[bytes, None]:
        """20 ms frames at `sample_rate`, clause by clause (first frame after one clause)."""
        async for frame in stream_clauses(self.synthesize, text, sample_rate=self.sample_rate):
            yield frame
