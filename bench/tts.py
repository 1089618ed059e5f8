"""TTS engines and the prompt cache on a campaign's script. JSON to stdout.

    .venv/bin/python bench/tts.py [--script callflow/scripts/saas_demo.yaml] [--calls 100]
                                  [--out FILE]

* ``engines``: for espeak-ng ``cmn-latn-pinyin``, espeak-ng ``yue`` and the recorded-prompts
  engine splicing slots (recordings made here with a slower espeak voice at 22.05 kHz, slots by
  espeak ``cmn-latn-pinyin``): RTF (render seconds / audio seconds) over every script line,
  and time to first frame of ``synthesize_stream`` against the time to render the whole line
  (p50/p95 ms), one line at a time.
* ``cache``: the campaign renders every fixed line once at start (``prefetch``), then a
  simulated run of ``--calls`` calls asks for the lines a call would say (greeting, pitch, and
  a random walk through the script's states); one call in ten hears a personalised line
  ("{name}您好..."), which no prefetch can cover. Reported: prefetch seconds, hit rate over
  the calls, and per-request latency from the cache.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from callflow.script import Script  # noqa: E402
from callflow.script_parse import load_script  # noqa: E402
from core.audio import pcm_seconds  # noqa: E402
from nlu.base import INTENTS  # noqa: E402
from speech import audio  # noqa: E402
from speech.cache import PromptCache  # noqa: E402
from speech.tts.base import TtsEngine  # noqa: E402
from speech.tts.espeak import EspeakTts  # noqa: E402
from speech.tts.recorded import RecordedTts  # noqa: E402

NAMES = ("张先生", "李女士", "王总", "陈经理", "刘老板")
HELLO = "{name}您好，我是云启科技的智能助理小安。"
PRICE = "标准版每个坐席每月{price}元，现在签约还有八折优惠。"


def _ms(values: Sequence[float]) -> dict[str, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {"p50": round(statistics.median(ordered) * 1000, 2), "p95": round(p95 * 1000, 2)}


async def _timed(make: Callable[[str], Awaitable[Any]], arg: str) -> tuple[float, Any]:
    started = time.perf_counter()
    result = await make(arg)
    return time.perf_counter() - started, result


async def _first_frame(tts: TtsEngine, text: str) -> float:
    started = time.perf_counter()
    stream = tts.synthesize_stream(text)
    try:
        await anext(stream)
    finally:
        await stream.aclose()
    return time.perf_counter() - started


async def measure_engine(tts: TtsEngine, lines: Sequence[str]) -> dict[str, Any]:
    render_s = audio_s = 0.0
    whole: list[float] = []
    first: list[float] = []
    for line in lines:
        seconds, pcm = await _timed(tts.synthesize, line)
        render_s += seconds
        audio_s += pcm_seconds(pcm, tts.sample_rate)
        whole.append(seconds)
        first.append(await _first_frame(tts, line))
    return {
        "engine": tts.name,
        "voice": tts.voice,
        "lines": len(lines),
        "audio_s": round(audio_s, 2),
        "rtf": round(render_s / audio_s, 5) if audio_s else None,
        "whole_line_ms": _ms(whole),
        "first_frame_ms": _ms(first),
    }


async def make_recordings(folder: Path, lines: Sequence[str]) -> Path:
    """A stand-in voice talent: espeak at 120 wpm, 22.05 kHz, quieter than the slot voice."""
    talent = EspeakTts(speed=120, pitch=40)
    manifest: dict[str, Any] = {"voice": "espeak-talent", "lines": {}}

    async def record(name: str, text: str) -> str:
        rendered = await talent.synthesize_native(text)
        audio.write_wav(folder / name, audio.scale_to_rms(rendered.pcm, -24.0),
                        rendered.sample_rate)  # fmt: skip
        return name

    for i, line in enumerate(lines):
        manifest["lines"][line] = await record(f"line{i:02d}.wav", line)
    hello_tail = HELLO.split("}", 1)[1]
    head, tail = PRICE.split("{price}")
    manifest["lines"][HELLO] = [await record("hello_tail.wav", hello_tail)]
    manifest["lines"][PRICE] = [await record("price_head.wav", head),
                                await record("price_tail.wav", tail)]  # fmt: skip
    (folder / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), "utf-8")
    return folder


def call_lines(script: Script, rng: random.Random, max_turns: int = 6) -> list[str]:
    """What one simulated call asks the cache for: the greeting, then a random walk."""
    state = script.states[script.start]
    said = [state.say]
    for _ in range(max_turns):
        if state.end:
            break
        intent = rng.choice(sorted(set(state.on) | set(script.global_on)))
        handler = script.handler(state, intent)
        if handler is None:
            said.append(script.reprompt)
            continue
        if handler.say:
            said.append(handler.say)
        elif handler.goto:
            state = script.states[handler.goto]
            said.append(state.say)
    return said


async def measure_cache(
    tts: TtsEngine, script: Script, calls: int, folder: Path, seed: int = 0
) -> dict[str, Any]:
    cache = PromptCache(tts, folder)
    started = time.perf_counter()
    rendered = await cache.prefetch(script.lines())
    prefetch_s = time.perf_counter() - started
    cache.stats.reset()
    rng = random.Random(seed)
    latency: list[float] = []
    for call in range(calls):
        lines = call_lines(script, rng)
        if call % 10 == 0:
            lines.insert(0, HELLO.format(name=NAMES[call // 10 % len(NAMES)]))
        for line in lines:
            seconds, _ = await _timed(cache.get, line)
            latency.append(seconds)
    return {
        "engine": tts.name,
        "script_lines": len(script.lines()),
        "prefetch_rendered": rendered,
        "prefetch_s": round(prefetch_s, 3),
        "calls": calls,
        **cache.stats.as_dict(),
        "get_ms": _ms(latency),
    }


async def run(script_path: Path, calls: int) -> dict[str, Any]:
    script = load_script(script_path, known_intents=INTENTS)
    lines = script.lines()
    mandarin, cantonese = EspeakTts(), EspeakTts("yue")
    splice_lines = [HELLO.format(name=n) for n in NAMES] + [
        PRICE.format(price=p) for p in ("300", "2.5万", "199", "1,280", "88")
    ]
    with tempfile.TemporaryDirectory(prefix="bench-tts-") as tmp:
        (Path(tmp) / "talent").mkdir()
        recorded = RecordedTts(await make_recordings(Path(tmp) / "talent", lines),
                               backup=mandarin)  # fmt: skip
        await recorded.load()
        engines = [
            {"name": "espeak cmn-latn-pinyin", **await measure_engine(mandarin, lines)},
            {"name": "espeak yue", **await measure_engine(cantonese, lines)},
            {"name": "recorded (fixed lines)", **await measure_engine(recorded, lines)},
            {"name": "recorded splice (name/price slots by espeak)",
             **await measure_engine(recorded, splice_lines)},
        ]  # fmt: skip
        cache = await measure_cache(mandarin, script, calls, Path(tmp) / "cache")
    return {
        "script": str(script_path),
        "engines": engines,
        "cache": cache,
        "note": "one line at a time on this machine; RTF = render s / audio s (8 kHz out)",
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--script", type=Path, default=REPO / "callflow/scripts/saas_demo.yaml")
    p.add_argument("--calls", type=int, default=100)
    p.add_argument("--out", type=Path, help="also write the JSON here")
    args = p.parse_args(argv)
    result = asyncio.run(run(args.script, args.calls))
    text = json.dumps(result, ensure_ascii=False, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
