"""Round-trip experiment: EspeakTts -> (8 kHz mu-law phone leg | raw 22 kHz) -> WhisperAsr.

Answers which callee wordings and which espeak / Whisper settings come back close enough for an
intent classifier, and whether the robot's own greeting is recoverable by the callee side.
Prints one JSON object: per-setting and per-phrase summaries, then every row.

    .venv/bin/python bench/espeak_roundtrip.py                    # demo lines (~1 min)
    .venv/bin/python bench/espeak_roundtrip.py --stage scan       # 36 voice settings, no prompt
    .venv/bin/python bench/espeak_roundtrip.py --stage prompts    # prompt biasing
    .venv/bin/python bench/espeak_roundtrip.py --stage channel    # 8 kHz vs raw, window, prompt
    .venv/bin/python bench/espeak_roundtrip.py --stage greeting   # robot greeting -> callee
    .venv/bin/python bench/espeak_roundtrip.py --stage latency    # decode time per utterance
    .venv/bin/python bench/espeak_roundtrip.py --stage custom --speeds 110 --prompts none,wide

When the intent model is built (build/nlu/linear) each row also carries the intent of the
reference text and of the transcript. Needs the Whisper model (scripts/install_models.py),
espeak-ng and sox. Settings are deterministic: espeak and beam search have no randomness.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.audio import SAMPLE_RATE, pcm_seconds
from speech import audio
from speech.asr.whisper import WhisperAsr
from speech.scoring import cer, strip_punct
from speech.tts.espeak import EspeakTts

PHRASES: dict[str, list[str]] = {
    "greeting": ["喂，你好", "你好，请讲", "喂", "你好", "喂，哪位", "你好，哪位"],
    "interested": [
        "我有兴趣，你说说看", "可以啊，介绍一下", "好的", "好的，你说吧", "可以", "你说",
        "有兴趣", "介绍一下",
    ],
    "price": ["多少钱", "多少钱？", "价格多少", "怎么收费", "贵不贵"],
    "busy": [
        "我现在在开会，你明天下午再打给我吧", "我现在很忙", "我在开会", "我很忙",
        "明天再打", "没时间",
    ],
    "stop": [
        "别再打了", "不要再给我打电话了", "我不需要，以后别打了", "不需要", "不要打了",
        "我不需要",
    ],
    "meeting": [
        "可以，明天来我公司聊", "好的，安排演示吧", "安排演示", "明天来公司", "可以见面",
    ],
}  # fmt: skip

# The lines recommended for the demo's simulated callee: with the "wide" prompt each came back
# with the right intent in >= 11 of 12 trials (3 voices x clean + 3 noisy renders).
DEMO_LINES: dict[str, list[str]] = {
    "greeting": ["喂，你好"],
    "interested": ["好的，你说吧", "介绍一下"],
    "price": ["多少钱"],
    "busy": ["我现在很忙", "我现在在开会，你明天下午再打给我吧"],
    "stop": ["我不需要，以后别打了", "不要再给我打电话了"],
    "meeting": ["好的，安排演示吧", "可以，明天来我公司聊"],
}

GREETING = "您好，我是智能助理小安，是AI语音机器人，给您介绍一款企业客服软件，现在方便听一下吗？"
GREETING_KEYWORDS = ["您好", "智能", "助理", "机器人", "介绍", "客服", "软件", "方便"]

# Whisper initial prompts. "wide": typical callee replies across intents (the recommendation).
PROMPTS: dict[str, str | None] = {
    "none": None,
    "context": "以下是销售电话中客户的回答。",
    "replies": "喂，你好。好的，你说吧。多少钱？我现在很忙。别再打了。我不需要。可以，安排演示吧。",
    "wide": (
        "喂，你好。哪位？好的，你说吧。可以，介绍一下。有点兴趣。多少钱？怎么收费？"
        "我现在很忙。我在开会，明天再打给我吧。别再打了。我不需要。不要再给我打电话了。"
        "可以，安排演示吧。明天来我公司聊。加个微信吧。"
    ),
}

# Per stage: (phrases, voice settings "speed/pitch/variant", channels, prompts, windows)
STAGES: dict[str, dict[str, list[str]]] = {
    "demo": {
        "voices": ["110/50/f2", "130/50/f2"],
        "channels": ["8k"],
        "prompts": ["none", "wide"],
        "windows": ["utterance"],
    },
    "scan": {
        "voices": [
            f"{s}/{p}/{v}"
            for s in (110, 140, 175)
            for p in (35, 50, 70)
            for v in ("-", "f2", "m3", "klatt")
        ],
        "channels": ["8k"],
        "prompts": ["none"],
        "windows": ["utterance"],
    },
    "prompts": {
        "voices": [f"{s}/{p}/{v}" for s in (110, 130) for p in (35, 50) for v in ("-", "f2")],
        "channels": ["8k"],
        "prompts": ["none", "context", "replies", "wide"],
        "windows": ["utterance"],
    },
    "channel": {
        "voices": ["110/50/f2", "130/50/f2", "110/35/-"],
        "channels": ["8k", "raw"],
        "prompts": ["none", "wide"],
        "windows": ["utterance", "full"],
    },
    "greeting": {
        "voices": ["110/50/-", "130/50/-", "150/50/-", "110/50/f2", "150/50/f2"],
        "channels": ["8k", "raw"],
        "prompts": ["none"],
        "windows": ["utterance", "full"],
    },
}


@dataclass(frozen=True)
class Voice:
    speed: int
    pitch: int
    variant: str | None

    @classmethod
    def parse(cls, spec: str) -> Voice:
        speed, pitch, variant = spec.split("/")
        return cls(int(speed), int(pitch), None if variant == "-" else variant)

    @property
    def key(self) -> str:
        return f"s{self.speed}/p{self.pitch}/{self.variant or '-'}"


@dataclass
class Row:
    intent: str
    phrase: str
    tts: str
    channel: str
    prompt: str
    window: str
    transcript: str
    cer: float
    exact: bool
    in_prompt: bool
    confidence: float
    audio_s: float
    decode_s: float
    ref_intent: str | None = None
    hyp_intent: str | None = None
    repeat: int = 0


def intent_model() -> Callable[[str], str] | None:
    """The project's intent classifier, when built; None otherwise."""
    try:
        from nlu import load_classifier

        clf = load_classifier()
    except Exception:  # not built or not importable: the bench still reports CER
        return None
    return lambda text: clf.classify(text, {}).intent


def add_noise(pcm: bytes, dbfs: float, seed: int) -> bytes:
    """White line noise at `dbfs` RMS (a fresh seed per repeat: decodes differ with the noise)."""
    rng = np.random.default_rng(seed)
    x = audio.pcm16_to_float(pcm)
    return audio.float_to_pcm16(x + rng.normal(0.0, 10 ** (dbfs / 20), x.size))


async def render(tts: EspeakTts, text: str, channel: str) -> tuple[bytes, int]:
    if channel == "raw":
        native = await tts.synthesize_native(text)
        return native.pcm, native.sample_rate
    return await tts.synthesize(text), SAMPLE_RATE


def phone_leg(pcm: bytes, rate: int, channel: str, repeat: int, noise_dbfs: float) -> bytes:
    """Repeat 0: clean. Repeat k > 0: line noise with seed k. 8k: then the mu-law leg."""
    if repeat:
        pcm = add_noise(pcm, noise_dbfs, seed=repeat)
    return audio.ulaw_roundtrip(pcm) if channel == "8k" else pcm


async def run_grid(
    asr: WhisperAsr,
    phrases: list[tuple[str, str]],
    voices: list[Voice],
    grid: dict[str, list[str]],
    *,
    repeats: int = 1,
    noise_dbfs: float = -60.0,
) -> list[Row]:
    rows: list[Row] = []
    for voice in voices:
        tts = EspeakTts(speed=voice.speed, pitch=voice.pitch, variant=voice.variant)
        for channel, repeat in itertools.product(grid["channels"], range(repeats)):
            clean = await asyncio.gather(*(render(tts, p, channel) for _, p in phrases))
            rendered = [
                (phone_leg(pcm, rate, channel, repeat, noise_dbfs), rate) for pcm, rate in clean
            ]
            for prompt_name, window in itertools.product(grid["prompts"], grid["windows"]):
                asr.window = "full" if window == "full" else "utterance"
                prompt = PROMPTS[prompt_name] or ""
                results = await asyncio.gather(
                    *(asr.transcribe(pcm, rate, prompt=prompt) for pcm, rate in rendered)
                )
                for (intent, phrase), tr in zip(phrases, results, strict=True):
                    rows.append(
                        Row(
                            intent,
                            phrase,
                            voice.key,
                            channel,
                            prompt_name,
                            window,
                            tr.text,
                            round(cer(phrase, tr.text), 3),
                            strip_punct(phrase) == strip_punct(tr.text),
                            strip_punct(phrase) in strip_punct(prompt or "-"),
                            round(tr.confidence, 3),
                            round(tr.audio_s, 2),
                            round(tr.decode_s, 3),
                            repeat=repeat,
                        )  # fmt: skip
                    )
    return rows


def summarize(rows: list[Row], by: tuple[str, ...]) -> list[dict[str, Any]]:
    groups: dict[tuple[Any, ...], list[Row]] = defaultdict(list)
    for row in rows:
        groups[tuple(getattr(row, k) for k in by)].append(row)
    out = []
    for key, items in groups.items():
        summary = {
            **dict(zip(by, key, strict=True)),
            "n": len(items),
            "mean_cer": round(statistics.mean(r.cer for r in items), 3),
            "exact": sum(r.exact for r in items),
            "near": sum(r.cer <= 0.34 for r in items),
            "rtf": round(sum(r.decode_s for r in items) / sum(r.audio_s for r in items), 3),
        }
        if items[0].ref_intent is not None:
            summary["intent_ok"] = sum(r.ref_intent == r.hyp_intent for r in items)
        out.append(summary)
    return sorted(out, key=lambda d: (-d.get("intent_ok", 0), d["mean_cer"]))


async def latency(asr: WhisperAsr) -> list[dict[str, Any]]:
    """Sequential decodes on one worker: seconds per utterance, utterance vs 30 s window."""
    tts = EspeakTts(speed=110, variant="f2")
    out = []
    for text in [
        "多少钱",
        "我现在很忙",
        "我不需要，以后别打了",
        "我现在在开会，你明天下午再打给我吧",
        GREETING,
    ]:
        pcm = audio.ulaw_roundtrip(await tts.synthesize(text))
        for window in ("utterance", "full"):
            asr.window = "utterance" if window == "utterance" else "full"
            await asr.transcribe(pcm)  # warm-up
            times = [(await asr.transcribe(pcm)).decode_s for _ in range(3)]
            out.append(
                {
                    "audio_s": round(pcm_seconds(pcm), 2),
                    "window": window,
                    "decode_s_median": round(statistics.median(times), 3),
                    "rtf": round(statistics.median(times) / pcm_seconds(pcm), 3),
                }
            )
    return out


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", choices=[*STAGES, "latency", "custom"], default="demo")
    parser.add_argument("--model-dir", default="build/models/whisper-base")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="CTranslate2 threads per worker")
    parser.add_argument("--voices", default="110/50/f2", help="custom: speed/pitch/variant,...")
    parser.add_argument("--channels", default="8k", help="custom: 8k,raw")
    parser.add_argument("--prompts", default="none", help=f"custom: any of {list(PROMPTS)}")
    parser.add_argument("--windows", default="utterance", help="custom: utterance,full")
    parser.add_argument("--intents", default="", help="only these phrase groups")
    parser.add_argument("--beam", type=int, default=2)
    parser.add_argument("--pad", type=float, default=1.0)
    parser.add_argument("--no-retry", action="store_true")
    parser.add_argument(
        "--repeats", type=int, default=0, help="1 clean + N-1 noisy renders (demo: 4, else 1)"
    )
    parser.add_argument("--noise-dbfs", type=float, default=-60.0, help="line noise level")
    return parser.parse_args()


async def main() -> None:
    args = parse_args()
    asr = WhisperAsr(
        args.model_dir,
        cpu_threads=args.threads,
        max_workers=1 if args.stage == "latency" else args.workers,
        beam_size=args.beam,
        pad_s=args.pad,
        retry_full_window=not args.no_retry,
    )
    started = time.perf_counter()
    report: dict[str, Any] = {"stage": args.stage, "args": vars(args)}
    if args.stage == "latency":
        report["latency"] = await latency(asr)
        await asr.aclose()
        json.dump(report, sys.stdout, ensure_ascii=False, indent=1)
        print()
        return

    split = lambda s: [x for x in s.split(",") if x]  # noqa: E731
    grid = STAGES.get(args.stage) or {
        "voices": split(args.voices),
        "channels": split(args.channels),
        "prompts": split(args.prompts),
        "windows": split(args.windows),
    }
    source = DEMO_LINES if args.stage == "demo" else PHRASES
    wanted = set(split(args.intents)) or set(source)
    phrases = [(i, p) for i, items in source.items() if i in wanted for p in items]
    if args.stage == "greeting":
        phrases = [("robot", GREETING)]
    voices = [Voice.parse(v) for v in grid["voices"]]
    rows = await run_grid(
        asr,
        phrases,
        voices,
        grid,
        repeats=args.repeats or (4 if args.stage == "demo" else 1),
        noise_dbfs=args.noise_dbfs,
    )
    await asr.aclose()

    classify = intent_model() if args.stage != "greeting" else None
    if classify:
        for row in rows:
            row.ref_intent, row.hyp_intent = classify(row.phrase), classify(row.transcript)
    report["elapsed_s"] = round(time.perf_counter() - started, 1)
    report["by_setting"] = summarize(rows, ("tts", "channel", "prompt", "window"))
    report["by_phrase_prompt"] = summarize(rows, ("intent", "phrase", "prompt", "in_prompt"))
    if args.stage == "greeting":
        report["keywords"] = [
            {
                "setting": f"{r.tts} {r.channel} {r.window}",
                "hits": [k for k in GREETING_KEYWORDS if k in r.transcript],
                "cer": r.cer,
            }
            for r in rows
        ]
    report["rows"] = [asdict(r) for r in rows]
    json.dump(report, sys.stdout, ensure_ascii=False, indent=1)
    print()


if __name__ == "__main__":
    asyncio.run(main())
