"""ASR benchmark on a generated telephone-band test set; prints one JSON object.

    .venv/bin/python bench/asr.py                  # default run (~3 min on 2 shared cores)
    .venv/bin/python bench/asr.py --quick          # a smaller set (~1 min)
    .venv/bin/python bench/asr.py --prompt sales   # with SALES_REPLIES_PROMPT biasing

Test set: short callee replies rendered by espeak-ng (Mandarin ``cmn-latn-pinyin`` at two
voices/speeds incl. variant f2 speed 110, the same with line noise, Cantonese ``yue``), taken to
8 kHz and through a G.711 mu-law round trip. Figures, all measured in this one run:

* ``cer``: character error rate per set after t2s normalization (micro-averaged), for the
  utterance-window fast path (``WhisperAsr``, the default engine) and for the standard
  faster-whisper ``transcribe()`` (30 s window, library defaults) on the same audio.
* ``rtf``: decode seconds / audio seconds on one thread (one worker, ``cpu_threads=1``).
* ``streaming``: utterances (up to 5 s) streamed in real time (20 ms frames) through
  ``StreamAdapter`` with Silero confirmation: end of speech -> final latency, from the endpoint
  decision and from the true end of speech (which adds the endpoint silence), partial and
  speculation counts, per-stream CPU, and two noise clips (hiss, hum). Three passes over the same
  audio: the configured adaptive endpoint (a turn whose speculative transcript reads complete
  ends after ``asr_early_end_ms`` of silence, others after ``end_silence_ms``), the fixed 700 ms
  endpoint alone, and a fixed short one. Each pass also streams sentences with a 450 ms pause
  in the middle ("我想问一下那个 … 价格是多少"): ``cut_off_turns`` counts those split in two.
* ``streams_per_core``: 1 / per-stream CPU per second of call audio, at 100 % and 30 % callee
  speech (capacity arithmetic, not a load test).
* ``memory``: peak RSS of this process (one shared model).

Needs the Whisper model (scripts/install_models.py) and espeak-ng. Espeak voices are robotic:
absolute CER says little about real callers; the fast/standard ratio on the same audio is the
point.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.config import SpeechConfig
from core.audio import FRAME_BYTES, SAMPLE_RATE, pcm_seconds
from core.text import canonical
from speech import audio
from speech.asr.adapter import StreamAdapter
from speech.asr.base import Final, Partial, SpeechEnded, SpeechStarted
from speech.asr.whisper import SALES_REPLIES_PROMPT, WhisperAsr
from speech.scoring import edit_distance, strip_punct
from speech.vad import Endpointer

ROOT = Path(__file__).resolve().parents[1]
MODEL_DIR = ROOT / "build" / "models" / "whisper-base"

SENTENCES = [
    "喂，你好",
    "好的，你说吧",
    "多少钱",
    "我现在很忙",
    "我不需要，以后别打了",
    "可以，介绍一下",
    "怎么收费",
    "明天来我公司聊",
    "加个微信吧",
    "我在开会，明天再打给我",
    "你们这个软件一年多少钱，有没有优惠",
]

# said with a 450 ms pause between the halves: one turn, which an endpoint must not split
PAUSED = [
    ("我想问一下那个", "你们的价格是多少"),
    ("我觉得", "还可以吧"),
    ("明天下午", "三点以后再打给我"),
]

# name -> (espeak voice, variant, speed, noise dBFS or None)
SETS: dict[str, tuple[str, str | None, int, float | None]] = {
    "zh-f2-110": ("cmn-latn-pinyin", "f2", 110, None),
    "zh-m3-150": ("cmn-latn-pinyin", "m3", 150, None),
    "zh-f2-110-noise": ("cmn-latn-pinyin", "f2", 110, -35.0),
    "yue-150": ("yue", None, 150, None),
}


# --- test set --------------------------------------------------------------------------------


def _pinyin(text: str) -> str:
    from pypinyin import Style, lazy_pinyin

    out = []
    for syl in lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True, tone_sandhi=True):
        syl = syl.strip()
        if re.fullmatch(r"[a-zü]+[1-5]", syl):
            out.append(syl.replace("ü", "v"))
        elif syl and out:
            out[-1] += ","
    return " ".join(out)


def render(text: str, voice: str, variant: str | None, speed: int) -> bytes:
    """espeak-ng -> 8 kHz PCM16."""
    spoken = _pinyin(text) if voice == "cmn-latn-pinyin" else text
    name = f"{voice}+{variant}" if variant else voice
    wav = subprocess.run(
        ["espeak-ng", "-v", name, "-s", str(speed), "--stdout", spoken],
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout
    parsed = audio.parse_wav(wav)
    return audio.resample_pcm16(parsed.pcm, parsed.sample_rate, SAMPLE_RATE)


def trim(pcm: bytes, floor: float = 0.003) -> bytes:
    """Cut leading/trailing near-silence (so the true end of speech is known)."""
    x = np.abs(audio.pcm16_to_float(pcm))
    loud = np.flatnonzero(x > floor)
    if loud.size == 0:
        return pcm
    return pcm[2 * int(loud[0]) : 2 * (int(loud[-1]) + 1)]


def add_noise(pcm: bytes, dbfs: float, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    x = audio.pcm16_to_float(pcm)
    noise = rng.normal(0.0, 10 ** (dbfs / 20), x.size).astype(np.float32)
    return audio.float_to_pcm16(x + noise)


@dataclass
class Item:
    set: str
    text: str
    pcm: bytes  # 8 kHz PCM16 after the phone leg, trimmed to the speech

    @property
    def seconds(self) -> float:
        return pcm_seconds(self.pcm)


def build_paused(pairs: list[tuple[str, str]], pause_s: float = 0.45) -> list[Item]:
    voice, variant, speed, _ = SETS["zh-f2-110"]
    items = []
    for first, second in pairs:
        halves = [trim(render(text, voice, variant, speed)) for text in (first, second)]
        pcm = audio.scale_to_rms(halves[0] + audio.silence(pause_s) + halves[1], -20.0)
        items.append(Item("paused", first + second, audio.ulaw_roundtrip(pcm)))
    return items


def build_set(names: list[str], sentences: list[str]) -> list[Item]:
    items = []
    for name in names:
        voice, variant, speed, noise = SETS[name]
        for i, text in enumerate(sentences):
            pcm = audio.scale_to_rms(trim(render(text, voice, variant, speed)), -20.0)
            if noise is not None:
                pcm = add_noise(pcm, noise, seed=i)
            items.append(Item(name, text, audio.ulaw_roundtrip(pcm)))
    return items


# --- accuracy and speed ---------------------------------------------------------------------


def clean(text: str) -> str:
    return strip_punct(canonical(text))


@dataclass
class Tally:
    errors: int = 0
    chars: int = 0
    decode_s: float = 0.0
    audio_s: float = 0.0
    samples: list[dict[str, Any]] = field(default_factory=list)

    def add(self, item: Item, hyp: str, decode_s: float) -> None:
        ref = clean(item.text)
        self.errors += edit_distance(ref, clean(hyp))
        self.chars += len(ref)
        self.decode_s += decode_s
        self.audio_s += item.seconds

    def summary(self) -> dict[str, float]:
        return {
            "cer": round(self.errors / max(1, self.chars), 3),
            "rtf": round(self.decode_s / max(1e-9, self.audio_s), 3),
        }


def standard_transcribe(asr: WhisperAsr, item: Item, prompt: str | None) -> tuple[str, float]:
    """faster-whisper's own transcribe(): 30 s window, library defaults (beam 5, fallback)."""
    started = time.perf_counter()
    x = audio.resample_float(audio.pcm16_to_float(item.pcm), SAMPLE_RATE, audio.WHISPER_RATE)
    segments, _ = asr._model.transcribe(
        x, language="zh", initial_prompt=prompt, without_timestamps=True, vad_filter=False
    )
    text = "".join(s.text for s in segments)  # materialized here, in this (bench) thread
    return canonical(text), time.perf_counter() - started


def accuracy(asr: WhisperAsr, items: list[Item], prompt: str | None) -> dict[str, Any]:
    fast: dict[str, Tally] = {}
    std: dict[str, Tally] = {}
    rows = []
    for item in items:
        tr = asr.transcribe_sync(item.pcm, SAMPLE_RATE, prompt=prompt)
        text_std, std_s = standard_transcribe(asr, item, prompt)
        fast.setdefault(item.set, Tally()).add(item, tr.text, tr.decode_s)
        std.setdefault(item.set, Tally()).add(item, text_std, std_s)
        rows.append({"set": item.set, "ref": item.text, "fast": tr.text, "standard": text_std})
    per_set = {
        name: {
            "utterances": sum(1 for i in items if i.set == name),
            "fast": fast[name].summary(),
            "standard": std[name].summary(),
        }
        for name in fast
    }
    total_fast, total_std = Tally(), Tally()
    for name in fast:
        for src, dst in ((fast[name], total_fast), (std[name], total_std)):
            dst.errors += src.errors
            dst.chars += src.chars
            dst.decode_s += src.decode_s
            dst.audio_s += src.audio_s
    f, s = total_fast.summary(), total_std.summary()
    return {
        "per_set": per_set,
        "all": {"fast": f, "standard": s},
        "cer_ratio_fast_over_standard": round(f["cer"] / s["cer"], 3) if s["cer"] else None,
        "speedup": round(s["rtf"] / f["rtf"], 2) if f["rtf"] else None,
        "full_window_retries": asr.stats.full_window_retries,
        "latin_retries": asr.stats.latin_retries,
        "rows": rows,
    }


# --- streaming latency ----------------------------------------------------------------------


def spread(items: list[Item], n: int, max_s: float = 5.0) -> list[Item]:
    """`n` utterances of at most `max_s` from shortest to longest (the longest included)."""
    usable = sorted((i for i in items if i.seconds <= max_s), key=lambda i: i.seconds)
    if len(usable) <= n:
        return usable
    picks = {round(k * (len(usable) - 1) / max(1, n - 1)) for k in range(n)}
    return [usable[k] for k in sorted(picks)]


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))], 1)


async def stream_one(adapter: StreamAdapter, item: Item, prompt: str | None) -> dict[str, Any]:
    lead, tail = 0.2, 1.2
    pcm = audio.silence(lead) + item.pcm + audio.silence(tail)
    true_end_frame = int(round((lead + item.seconds) / 0.02))
    stream = adapter.stream(prompt=prompt)
    walls: list[float] = []
    events: list[tuple[float, Any]] = []

    async def read() -> None:
        async for ev in stream:
            events.append((time.perf_counter(), ev))

    reader = asyncio.create_task(read())
    start = time.perf_counter()
    for i in range(len(pcm) // FRAME_BYTES):
        walls.append(time.perf_counter())
        stream.push(pcm[i * FRAME_BYTES : (i + 1) * FRAME_BYTES])
        await asyncio.sleep(max(0.0, start + (i + 1) * 0.02 - time.perf_counter()))
    stream.end_input()
    await reader
    finals = [(w, e) for w, e in events if isinstance(e, Final)]
    ends = [w for w, e in events if isinstance(e, SpeechEnded)]
    row: dict[str, Any] = {"set": item.set, "audio_s": round(item.seconds, 2)}
    if finals and ends:
        w_final, _ = finals[-1]
        row["from_endpoint_ms"] = (w_final - ends[-1]) * 1000
        row["from_true_end_ms"] = (w_final - walls[min(true_end_frame, len(walls) - 1)]) * 1000
    row["finals"] = len(finals)
    row["texts"] = [e.text for _, e in finals if e.text]
    row["started"] = any(isinstance(e, SpeechStarted) for _, e in events)
    row["decode_ms"] = [e.decode_ms for _, e in finals]
    row["partials"] = sum(1 for _, e in events if isinstance(e, Partial))
    return row


def noise_clips() -> list[Item]:
    """2 s of non-speech that webrtcvad alone calls speech: line hiss and mains hum."""
    rng = np.random.default_rng(7)
    hiss = audio.float_to_pcm16(rng.normal(0, 0.1, SAMPLE_RATE * 2))
    square = np.sign(np.sin(2 * np.pi * 50 * np.arange(SAMPLE_RATE * 2) / SAMPLE_RATE))
    hum = audio.ulaw_roundtrip(audio.float_to_pcm16(0.3 * square))
    return [Item("noise", "", hiss), Item("noise", "", hum)]


async def streaming(
    asr: WhisperAsr,
    items: list[Item],
    prompt: str | None,
    end_silence_ms: int,
    speculate_ms: int,
    early_end_ms: int | None,
    confirm: Any,
    with_noise: bool,
    paused: list[Item],
) -> dict[str, Any]:
    adapter = StreamAdapter(
        asr,
        lambda: Endpointer(end_silence_ms=end_silence_ms),
        speculate_ms=speculate_ms,
        early_end_ms=early_end_ms,
        confirm=confirm,
    )
    before = (asr.stats.decode_s, asr.stats.draft_decode_s)
    audio_total = 0.0
    rows = []
    for item in items:
        rows.append(await stream_one(adapter, item, prompt))
        print(f"streamed {item.set} {item.seconds:.1f}s", file=sys.stderr)
        audio_total += item.seconds + 1.4
    cpu = asr.stats.decode_s - before[0] + asr.stats.draft_decode_s - before[1]
    clips = noise_clips() if with_noise else []
    noise = [await stream_one(adapter, clip, prompt) for clip in clips]
    split = [await stream_one(adapter, item, prompt) for item in paused]
    endpoint = [r["from_endpoint_ms"] for r in rows if "from_endpoint_ms" in r]
    true_end = [r["from_true_end_ms"] for r in rows if "from_true_end_ms" in r]
    speech_s = sum(i.seconds for i in items)
    decode = [ms for r in rows for ms in r["decode_ms"]]
    return {
        "utterances": len(items),
        "utterance_s_max": round(max(i.seconds for i in items), 2),
        "end_silence_ms": end_silence_ms,
        "speculate_ms": speculate_ms,
        "early_end_ms": early_end_ms,
        "final_decode_ms": {"p50": pct(decode, 0.5), "p95": pct(decode, 0.95)},
        "final_latency_from_endpoint_ms": {"p50": pct(endpoint, 0.5), "p95": pct(endpoint, 0.95)},
        "final_latency_from_true_end_ms": {"p50": pct(true_end, 0.5), "p95": pct(true_end, 0.95)},
        "vad_confirm": confirm is not None,
        "noise_clips": len(noise),
        "noise_clips_with_text": sum(1 for r in noise if r["texts"]),
        "noise_clips_with_speech_start": sum(1 for r in noise if r["started"]),
        "missing_finals": sum(1 for r in rows if "from_endpoint_ms" not in r),
        "extra_finals": sum(max(0, r["finals"] - 1) for r in rows),
        "paused_turns": len(split),
        "cut_off_turns": sum(1 for r in split if r["finals"] > 1),
        "paused_texts": [r["texts"] for r in split],
        "partials_per_utterance": round(statistics.mean(r["partials"] for r in rows), 2),
        "adapter": asdict(adapter.stats),
        "decode_cpu_s_per_speech_s": round(cpu / speech_s, 3),
        "streamed_audio_s": round(audio_total, 1),
    }


def vad_cost() -> float:
    """webrtcvad endpointer seconds per second of audio (one stream)."""
    ep = Endpointer()
    rng = np.random.default_rng(0)
    pcm = audio.float_to_pcm16(rng.normal(0, 0.05, SAMPLE_RATE * 10))
    started = time.perf_counter()
    for i in range(0, len(pcm), FRAME_BYTES):
        ep.push(pcm[i : i + FRAME_BYTES])
    return (time.perf_counter() - started) / 10


# --- main ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    defaults = SpeechConfig()  # the engine's configured endpointing (config.py defaults)
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=str(MODEL_DIR))
    p.add_argument("--quick", action="store_true", help="5 sentences, 2 streamed per set")
    p.add_argument("--prompt", choices=["none", "sales"], default="none")
    p.add_argument("--pad-s", type=float, default=None, help="WhisperAsr pad_s (default: its own)")
    p.add_argument("--beam", type=int, default=None, help="WhisperAsr beam_size")
    p.add_argument("--end-silence-ms", type=int, default=defaults.end_silence_ms)
    p.add_argument("--speculate-ms", type=int, default=defaults.asr_speculate_ms)
    p.add_argument("--early-end-ms", type=int, default=defaults.asr_early_end_ms)
    p.add_argument(
        "--short-endpoint-ms", type=int, default=300, help="third pass: a short endpoint (0: off)"
    )
    p.add_argument("--stream-per-set", type=int, default=3, help="utterances streamed per set")
    p.add_argument("--rows", action="store_true", help="include every transcript in the JSON")
    p.add_argument(
        "--no-vad-confirm", action="store_true", help="webrtcvad only (no Silero confirmation)"
    )
    args = p.parse_args(argv)

    t0 = time.perf_counter()
    kwargs: dict[str, Any] = {"cpu_threads": 1, "max_workers": 1}
    if args.pad_s is not None:
        kwargs["pad_s"] = args.pad_s
    if args.beam is not None:
        kwargs["beam_size"] = args.beam
    asr = WhisperAsr(args.model, **kwargs)
    rss_model = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sentences = SENTENCES[:5] if args.quick else SENTENCES
    items = build_set(list(SETS), sentences)
    prompt = SALES_REPLIES_PROMPT if args.prompt == "sales" else None
    asr.transcribe_sync(items[0].pcm, SAMPLE_RATE, prompt=prompt)  # warm-up
    acc = accuracy(asr, items, prompt)
    per_set = 2 if args.quick else args.stream_per_set
    chosen = [i for name in SETS for i in spread([x for x in items if x.set == name], per_set)]
    short = [i for name in SETS for i in spread([x for x in items if x.set == name], 2)]
    # (end silence, speculate, early end): configured adaptive, fixed long, fixed short
    passes: list[tuple[int, int, int | None]] = [
        (args.end_silence_ms, args.speculate_ms, args.early_end_ms or None),
        (args.end_silence_ms, 300, None),
    ]
    if args.short_endpoint_ms:
        passes.append((args.short_endpoint_ms, max(100, args.short_endpoint_ms * 2 // 5), None))
    paused = build_paused(PAUSED)
    confirm = None
    if not args.no_vad_confirm:
        from speech.silero import SileroVad

        confirm = SileroVad()
    streams = [
        asyncio.run(
            streaming(asr, chosen if k < 2 else short, prompt, e, s, x, confirm, k == 0, paused)
        )
        for k, (e, s, x) in enumerate(passes)
    ]
    asyncio.run(asr.aclose())
    rows = acc.pop("rows")
    vad_s = vad_cost()
    with_partials = streams[0]["decode_cpu_s_per_speech_s"] + vad_s
    finals_only = acc["all"]["fast"]["rtf"] + vad_s
    result = {
        "engine": "whisper-base int8, utterance window (StreamAdapter)",
        "settings": {
            "pad_s": asr.pad_s,
            "beam_size": asr.beam_size,
            "cpu_threads": 1,
            "prompt": args.prompt,
            "standard": "faster-whisper transcribe(): 30 s window, beam 5, temperature fallback",
        },
        "test_set": {
            "sets": {
                k: {"voice": v[0], "variant": v[1], "speed": v[2], "noise_dbfs": v[3]}
                for k, v in SETS.items()
            },
            "utterances": len(items),
            "audio_s": round(sum(i.seconds for i in items), 1),
            "channel": "8 kHz, G.711 mu-law round trip",
        },
        "accuracy": acc,
        "streaming": streams,
        "streams_per_core": {
            "note": "1 / CPU per second of callee speech; partials only run when a worker is idle",
            "finals_only": {
                "all_speech": round(1 / finals_only, 1),
                "speech_30pct": round(1 / (0.3 * finals_only), 1),
            },
            "with_partials_when_idle": {
                "all_speech": round(1 / with_partials, 1),
                "speech_30pct": round(1 / (0.3 * with_partials), 1),
            },
            "vad_cpu_s_per_s": round(vad_s, 5),
        },
        "memory": {
            "rss_after_model_mb": round(rss_model, 1),
            "rss_peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        },
        "wall_s": round(time.perf_counter() - t0, 1),
    }
    if args.rows:
        result["rows"] = rows
    print(json.dumps(result, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
