"""Phone-audio understanding: fresh sales-call replies -> espeak -> 8 kHz G.711 -> Whisper -> NLU.

Measures what the robot understands of a spoken reply, end to end, and what it then does:

* data: ``bench/data/understanding.tsv`` (``intent<TAB>text<TAB>kind[<TAB>dialect]``), replies
  written for this benchmark only (nothing else reads the file; none is in ``nlu/data``);
* audio: each reply rendered in ``--renders`` configurations drawn by a seeded RNG from the
  EVALUATION voices (espeak-ng ``cmn-latn-pinyin``, or ``yue`` for Cantonese-phrased lines,
  variants f2/m3/f4/klatt3, speed 110/150, pitch 40/60, word gap 0/3), at 8 kHz through a
  G.711 mu-law or A-law round trip, a third of them with white line noise;
* ear: the project's recognizer (``app.engines.make_asr`` over the config) as
  ``main.py asr transcribe`` runs it (``transcribe(pcm, 8000, prompt=None)``), and, for the
  current path, as a call runs it: with the script's decoder hints as the prompt when the node
  uses them (``speech.asr_hints``; ``--hints SCRIPT``: that script's ``asr_hints``, i.e.
  ``Script.asr_prompt``; ``--hints ''``: none). Without hints both paths hear the same decode;
* understanding: the project's NLU (``app.engines.make_nlu``) on two paths over the same audio:

  - ``baseline``: the 1-best transcript without hints, the context of ``main.py nlu classify``,
    and no clarification (every intent but ``other`` is acted on);
  - ``current``: the call path as it is being improved: the transcript decoded with the
    script's hints, its confidence as ``context["asr_confidence"]``, the recognizer's n-best
    (``Transcript.alternatives`` when it has them) as ``context["alternatives"]``, the caller's
    dialect as ``context["dialect"]`` (None for Mandarin lines: unknown, as on a call), the
    expected intents of a script state (``--expected``) as ``context["expected"]``, and the
    clarification policy ``callflow.clarify.judge`` when it exists (else: always act).

Reported per set (overall, by kind, voice, channel, dialect), for both paths: intent accuracy
and macro-F1 on audio, the rate of wrong actions (acting on a wrong intent) and of
clarifications (confirming or asking again; ``other`` counts as asking again); with the text
accuracy of the same sentences (``nlu classify`` on the written reply) and the recognizer's CER
on each path's transcripts (``cer``: without hints, ``cer_current``: with them).
Also the NLU's latency (p50/p95 ms). One JSON object on stdout; every clip's row goes to
``build/bench/understanding/rows.jsonl``; progress on stderr.

Renders and transcripts are cached under ``build/bench/understanding/`` keyed by everything that
changes them (text, voice settings and espeak version, channel, noise seed; the audio and the
recognizer's settings, model files and code), so a re-run decodes only what changed.

    .venv/bin/python bench/understanding.py                 # ~470 replies x 2 renders
    .venv/bin/python bench/understanding.py --limit 40      # a quick look
    .venv/bin/python bench/understanding.py --renders 3 --expected ask_price,ask_detail
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import random
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.audio import SAMPLE_RATE  # noqa: E402
from core.text import canonical  # noqa: E402
from speech import audio  # noqa: E402
from speech.scoring import cer  # noqa: E402

DATA = ROOT / "bench" / "data" / "understanding.tsv"
CACHE = ROOT / "build" / "bench" / "understanding"
KINDS = ("plain", "dialect", "filler", "short")
DIALECTS = ("yue", "southwestern", "wu", "northeastern")
FALLBACK = "other"

# EVALUATION voices only (training uses a disjoint set: nlu/training, speech/adapt).
MANDARIN_VOICE = "cmn-latn-pinyin"
CANTONESE_VOICE = "yue"
VARIANTS = ("f2", "m3", "f4", "klatt3")
SPEEDS = (110, 150)
PITCHES = (40, 60)
GAPS = (0, 3)
CODECS = ("ulaw", "alaw")
NOISE_SHARE = 1 / 3
NOISE_DBFS = (-42.0, -36.0)


# --- data -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reply:
    intent: str
    text: str
    kind: str
    dialect: str | None = None


def read_replies(path: Path = DATA) -> list[Reply]:
    """The benchmark's replies; ValueError on a malformed line (the file is hand-written)."""
    replies = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) not in (3, 4) or cols[2] not in KINDS:
            raise ValueError(f"{path}:{number}: want intent<TAB>text<TAB>kind[<TAB>dialect]")
        dialect = cols[3] if len(cols) == 4 else None
        if (dialect is not None) != (cols[2] == "dialect") or dialect not in (None, *DIALECTS):
            raise ValueError(f"{path}:{number}: a dialect line names one of {DIALECTS}")
        replies.append(Reply(cols[0], cols[1], cols[2], dialect))
    return replies


# --- rendering --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Render:
    voice: str
    variant: str
    speed: int
    pitch: int
    gap: int
    codec: str
    noise_dbfs: float | None
    seed: int

    @property
    def voice_group(self) -> str:
        return CANTONESE_VOICE if self.voice == CANTONESE_VOICE else self.variant

    @property
    def channel(self) -> str:
        return self.codec + ("+noise" if self.noise_dbfs is not None else "")


def plan_renders(reply: Reply, n: int, seed: int) -> list[Render]:
    """`n` distinct voice settings for `reply`, drawn by RNGs seeded with the reply itself
    (editing other lines never changes this one's renders) and the render's index (the plan
    for n renders is the start of the plan for more: a run with more renders reuses the cache).
    """
    order = [(v, s, p, g) for v in VARIANTS for s in SPEEDS for p in PITCHES for g in GAPS]
    random.Random(f"{seed}\x1f{reply.intent}\x1f{reply.text}").shuffle(order)
    voice = CANTONESE_VOICE if reply.dialect == "yue" else MANDARIN_VOICE
    renders = []
    for index, (variant, speed, pitch, gap) in enumerate(order[:n]):
        rng = random.Random(f"{seed}\x1f{reply.intent}\x1f{reply.text}\x1f{index}")
        codec = rng.choice(CODECS)
        noise = rng.choice(NOISE_DBFS) if rng.random() < NOISE_SHARE else None
        renders.append(
            Render(voice, variant, speed, pitch, gap, codec, noise, rng.randrange(2**31))
        )
    return renders


def phone_leg(pcm: bytes, render: Render) -> bytes:
    """Seeded white line noise (some renders), then the G.711 round trip at 8 kHz."""
    return audio.phone_leg(pcm, render.codec, render.noise_dbfs, render.seed)


def digest(value: Any) -> str:
    """A stable key for JSON-able `value` (or bytes)."""
    raw = value if isinstance(value, bytes) else json.dumps(value, sort_keys=True).encode()
    return hashlib.sha256(raw).hexdigest()[:24]


class Renderer:
    """espeak-ng voices (one per setting, shared) with a WAV cache keyed by text + setting."""

    def __init__(self, cache: Path) -> None:
        self.cache = cache / "audio"
        self.cache.mkdir(parents=True, exist_ok=True)
        self._voices: dict[tuple[str, str, int, int, int], Any] = {}

    def _tts(self, r: Render) -> Any:
        from speech.tts.espeak import EspeakTts

        key = (r.voice, r.variant, r.speed, r.pitch, r.gap)
        if key not in self._voices:
            self._voices[key] = EspeakTts(
                r.voice, speed=r.speed, pitch=r.pitch, word_gap=r.gap, variant=r.variant
            )
        return self._voices[key]

    async def render(self, text: str, r: Render) -> bytes:
        tts = self._tts(r)
        path = self.cache / f"{digest([text, asdict(r), tts.version, tts.voice])}.wav"
        if path.is_file():
            return audio.read_wav(path).pcm
        pcm = phone_leg(await tts.synthesize(text), r)
        audio.write_wav(path, pcm, SAMPLE_RATE)
        return pcm


# --- recognition ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Heard:
    text: str
    confidence: float
    alternatives: tuple[tuple[str, float], ...]
    decode_s: float


def _file_id(path: Path) -> list[Any]:
    return [path.name, path.stat().st_size, int(path.stat().st_mtime)] if path.is_file() else []


def recognizer_fingerprint(cfg: Any, engine: Any) -> dict[str, Any]:
    """Everything that changes a transcript besides the audio: the engine's settings, its model
    files and the code that decodes and normalises."""
    inner = getattr(engine, "engine", engine)
    settings = {
        k: getattr(inner, k)
        for k in (
            "language", "initial_prompt", "beam_size", "num_hypotheses", "window", "pad_s",
            "draft_pad_s", "tokens_per_s", "retry_full_window",
        )
        if hasattr(inner, k)
    }  # fmt: skip
    model = ROOT / cfg.speech.whisper_model_dir
    sources = ["speech/asr/whisper.py", "speech/asr/adapter.py", "core/text.py"]
    return {
        "engine": f"{type(engine).__name__}/{type(inner).__name__}",
        "asr_engine": cfg.speech.asr_engine,
        "settings": settings,
        "model": [_file_id(model / n) for n in ("model.bin", "config.json", "tokenizer.json")],
        "code": {s: digest((ROOT / s).read_bytes()) for s in sources if (ROOT / s).is_file()},
    }


def _alternatives(transcript: Any) -> tuple[tuple[str, float], ...]:
    """The recognizer's n-best as ``(text, log-prob)`` pairs (``Transcript.alternatives``)."""
    out = []
    for alt in getattr(transcript, "alternatives", None) or ():
        if isinstance(alt, str):
            out.append((alt, 0.0))
        elif isinstance(alt, tuple | list) and len(alt) == 2:
            out.append((str(alt[0]), float(alt[1])))
    return tuple(out)


async def transcribe(engine: Any, pcm: bytes, prompt: str | None = None) -> Heard:
    """As ``main.py asr transcribe --prompt`` does for a clip under 30 s: ``transcribe`` (a
    stream-only engine goes through a recognizer stream, as there)."""
    started = time.perf_counter()
    if hasattr(engine, "transcribe"):
        tr = await engine.transcribe(pcm, SAMPLE_RATE, prompt=prompt)
        alts = _alternatives(tr)
        return Heard(tr.text, tr.confidence, alts, time.perf_counter() - started)
    from speech.asr.cli import _via_stream

    text, confidence = await _via_stream(engine, pcm, SAMPLE_RATE, prompt)
    return Heard(text, confidence, (), time.perf_counter() - started)


class Ear:
    """The recognizer with a transcript cache keyed by the audio and the fingerprint."""

    def __init__(self, engine: Any, fingerprint: Mapping[str, Any], cache: Path) -> None:
        self.engine = engine
        self.key = digest(fingerprint)
        self.cache = cache / "asr"
        self.cache.mkdir(parents=True, exist_ok=True)
        self.decoded = 0
        self.cached = 0

    async def hear(self, pcm: bytes, prompt: str | None = None) -> Heard:
        # no prompt keeps the key it had before prompts existed (the cache stays valid)
        parts = [self.key, digest(pcm)] + ([digest(prompt.encode())] if prompt else [])
        path = self.cache / f"{digest(parts)}.json"
        if path.is_file():
            self.cached += 1
            row = json.loads(path.read_text(encoding="utf-8"))
            alts = tuple((str(t), float(lp)) for t, lp in row["alternatives"])
            return Heard(row["text"], row["confidence"], alts, 0.0)
        heard = await transcribe(self.engine, pcm, prompt)
        path.write_text(json.dumps(asdict(heard), ensure_ascii=False), encoding="utf-8")
        self.decoded += 1
        return heard


# --- understanding and what the robot does --------------------------------------------------

Policy = Callable[[str, float, float | None], str]


def always_act(intent: str, confidence: float, margin: float | None) -> str:
    return "act"


def load_policy(threshold: float | None = None) -> tuple[str, Policy]:
    """``callflow.clarify.judge`` when it exists (another part of the project), else act."""
    try:
        from callflow.clarify import judge
    except ImportError:
        return "act (callflow.clarify not found)", always_act
    kwargs = {} if threshold is None else {"threshold": threshold}

    def policy(intent: str, confidence: float, margin: float | None) -> str:
        return str(judge(intent, confidence, margin=margin, **kwargs))

    return "callflow.clarify.judge" + (f" threshold={threshold}" if kwargs else ""), policy


def decide(intent: str, confidence: float, margin: float | None, policy: Policy) -> str:
    """act / confirm / ask_again; ``other`` is never acted on (the robot asks again)."""
    if intent == FALLBACK:
        return "ask_again"
    return policy(intent, confidence, margin)


@dataclass(frozen=True, slots=True)
class Understood:
    intent: str
    confidence: float
    decision: str
    ms: float


def understand(nlu: Any, text: str, context: Mapping[str, Any], policy: Policy) -> Understood:
    started = time.perf_counter()
    result = nlu.classify(text, context)
    ms = (time.perf_counter() - started) * 1000
    margin = getattr(result, "margin", None)
    decision = decide(result.intent, float(result.confidence), margin, policy)
    return Understood(result.intent, float(result.confidence), decision, ms)


# --- metrics (pure: tests/test_bench_understanding.py) --------------------------------------


def accuracy(gold: Sequence[str], pred: Sequence[str]) -> float:
    return sum(g == p for g, p in zip(gold, pred, strict=True)) / len(gold) if gold else 0.0


def macro_f1(gold: Sequence[str], pred: Sequence[str]) -> float:
    """F1 averaged over the intents present in `gold` (as ``nlu.training.metrics``): a wrong
    prediction of an absent intent still costs the recall of the gold intent it was taken from."""
    pairs = Counter(zip(gold, pred, strict=True))
    gold_n, pred_n = Counter(gold), Counter(pred)
    scores = []
    for label in gold_n:
        tp = pairs[(label, label)]
        p = tp / pred_n[label] if pred_n[label] else 0.0
        r = tp / gold_n[label]
        scores.append(2 * p * r / (p + r) if p + r else 0.0)
    return sum(scores) / len(scores) if scores else 0.0


def action_counts(gold: Sequence[str], pred: Sequence[str], decisions: Sequence[str]) -> Counter:
    """right_action / wrong_action (acted on the right / a wrong intent) and clarification
    (confirm or ask again, which includes every ``other``)."""
    out: Counter[str] = Counter()
    for g, p, d in zip(gold, pred, decisions, strict=True):
        if d == "act" and p != FALLBACK:
            out["right_action" if p == g else "wrong_action"] += 1
        else:
            out["clarification"] += 1
    return out


def path_metrics(gold: Sequence[str], pred: Sequence[str], decisions: Sequence[str]) -> dict:
    n = len(gold)
    counts = action_counts(gold, pred, decisions)
    return {
        "accuracy": round(accuracy(gold, pred), 4),
        "macro_f1": round(macro_f1(gold, pred), 4),
        "wrong_action_rate": round(counts["wrong_action"] / n, 4) if n else 0.0,
        "clarification_rate": round(counts["clarification"] / n, 4) if n else 0.0,
        "right_action_rate": round(counts["right_action"] / n, 4) if n else 0.0,
    }


@dataclass(frozen=True, slots=True)
class Row:
    intent: str
    text: str
    kind: str
    dialect: str | None
    voice: str
    channel: str
    render: str
    heard: str
    heard_current: str
    alternatives: int
    cer: float
    cer_current: float
    text_pred: str
    base_pred: str
    base_conf: float
    base_decision: str
    cur_pred: str
    cur_conf: float
    cur_decision: str


def set_metrics(rows: Sequence[Row]) -> dict[str, Any]:
    gold = [r.intent for r in rows]
    return {
        "n": len(rows),
        "cer": round(statistics.fmean(r.cer for r in rows), 4) if rows else 0.0,
        "cer_current": round(statistics.fmean(r.cer_current for r in rows), 4) if rows else 0.0,
        "text_accuracy": round(accuracy(gold, [r.text_pred for r in rows]), 4),
        "baseline": path_metrics(
            gold, [r.base_pred for r in rows], [r.base_decision for r in rows]
        ),
        "current": path_metrics(gold, [r.cur_pred for r in rows], [r.cur_decision for r in rows]),
    }


def by(rows: Iterable[Row], key: Callable[[Row], str | None]) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        value = key(row)
        if value is not None:
            groups[value].append(row)
    return {name: set_metrics(items) for name, items in sorted(groups.items())}


def percentiles(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p95": 0.0}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]
    return {"p50": round(statistics.median(ordered), 2), "p95": round(p95, 2)}


def report(rows: Sequence[Row]) -> dict[str, Any]:
    return {
        "overall": set_metrics(rows),
        "by_kind": by(rows, lambda r: r.kind),
        "by_voice": by(rows, lambda r: r.voice),
        "by_channel": by(rows, lambda r: r.channel),
        "by_dialect": by(rows, lambda r: r.dialect),
    }


# --- the run ----------------------------------------------------------------------------------


def _progress(total: int, label: str) -> Any:
    """A tqdm bar on stderr when tqdm is installed; else a plain line every 25 items."""
    try:
        from tqdm import tqdm

        return tqdm(total=total, desc=label, file=sys.stderr, mininterval=2.0)
    except ImportError:
        return _Lines(total, label)


class _Lines:
    def __init__(self, total: int, label: str) -> None:
        self.total, self.label, self.done = total, label, 0

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.done % 25 == 0 or self.done == self.total:
            print(f"{self.label}: {self.done}/{self.total}", file=sys.stderr, flush=True)

    def close(self) -> None:
        pass


def select(replies: list[Reply], limit: int | None, seed: int) -> list[Reply]:
    """All replies, or a seeded sample of `limit` of them in file order."""
    if not limit or limit >= len(replies):
        return replies
    keep = set(random.Random(seed).sample(range(len(replies)), limit))
    return [r for i, r in enumerate(replies) if i in keep]


async def hear_all(
    clips: list[tuple[Reply, Render]],
    renderer: Renderer,
    ear: Ear,
    jobs: int = 1,
    prompt: str | None = None,
) -> list[tuple[Heard, Heard]]:
    """Render and decode every clip without and with `prompt` (one decode when there is none),
    `jobs` at a time (the recognizer's own worker pool bounds the decodes:
    ``speech.asr_workers``)."""
    bar = _progress(len(clips), "render+decode")
    slots = asyncio.Semaphore(max(1, jobs))

    async def one(reply: Reply, render: Render) -> tuple[Heard, Heard]:
        async with slots:
            pcm = await renderer.render(reply.text, render)
            plain = await ear.hear(pcm)
            hinted = await ear.hear(pcm, prompt) if prompt else plain
        bar.update(1)
        return plain, hinted

    try:
        return list(await asyncio.gather(*(one(reply, render) for reply, render in clips)))
    finally:
        bar.close()


def build_rows(
    clips: list[tuple[Reply, Render]],
    heard: list[tuple[Heard, Heard]],
    nlu: Any,
    base_nlu: Any,
    policy: Policy,
    base_ctx: Mapping[str, Any],
    expected: tuple[str, ...],
    timings: dict[str, list[float]],
) -> list[Row]:
    text_pred: dict[str, str] = {}
    rows = []
    for (reply, render), (plain, h) in zip(clips, heard, strict=True):
        if reply.text not in text_pred:
            text_pred[reply.text] = nlu.classify(canonical(reply.text), base_ctx).intent
        base = understand(base_nlu, plain.text, base_ctx, always_act)
        cur_ctx: dict[str, Any] = {
            **base_ctx,
            "dialect": reply.dialect,
            "asr_confidence": h.confidence,
        }
        if h.alternatives:
            cur_ctx["alternatives"] = h.alternatives
        if expected:
            cur_ctx["expected"] = expected
        cur = understand(nlu, h.text, cur_ctx, policy)
        timings["baseline"].append(base.ms)
        timings["current"].append(cur.ms)
        rows.append(
            Row(
                reply.intent,
                reply.text,
                reply.kind,
                reply.dialect,
                render.voice_group,
                render.channel,
                f"{render.voice}+{render.variant} s{render.speed} p{render.pitch} g{render.gap}",
                plain.text,
                h.text,
                len(h.alternatives),
                round(cer(reply.text, plain.text), 4),
                round(cer(reply.text, h.text), 4),
                text_pred[reply.text],
                base.intent,
                round(base.confidence, 4),
                base.decision,
                cur.intent,
                round(cur.confidence, 4),
                cur.decision,
            )  # fmt: skip
        )
    return rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "config.yaml"))
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--renders", type=int, default=2, help="renders per reply (default 2)")
    parser.add_argument("--limit", type=int, default=0, help="a seeded sample of N replies")
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--expected", default="", help="current path: a state's intents a,b,c")
    parser.add_argument(
        "--hints",
        default=None,
        help="current path: decode with this script's asr_hints (default: as the node does, "
        "callflow.script's when speech.asr_hints is on; '': none)",
    )
    parser.add_argument("--clarify-threshold", type=float, default=None)
    parser.add_argument("--cache", default=str(CACHE))
    parser.add_argument(
        "--jobs", type=int, default=2, help="clips in flight (decodes: speech.asr_workers)"
    )
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from app.config import load_config
    from app.engines import make_asr, make_nlu

    started = time.perf_counter()
    cfg = load_config(args.config)
    cache = Path(args.cache)
    replies = select(read_replies(Path(args.data)), args.limit, args.seed)
    plans = [plan_renders(r, args.renders, args.seed) for r in replies]
    # first renders first: a run stopped early still covers every reply once
    clips = [(r, p[i]) for i in range(args.renders) for r, p in zip(replies, plans, strict=True)]
    if args.hints is None:  # as the node decodes: the script's hints when speech.asr_hints
        hints = cfg.callflow.script if cfg.speech.asr_hints else ""
    else:
        hints = args.hints
    prompt = script_prompt(hints) if hints else None
    engine = make_asr(cfg)
    try:
        ear = Ear(engine, recognizer_fingerprint(cfg, engine), cache)
        heard = await hear_all(clips, Renderer(cache), ear, args.jobs, prompt)
    finally:
        await engine.aclose()
    decode_s = time.perf_counter() - started
    nlu = make_nlu(cfg)
    base_nlu, base_name = baseline_nlu(cfg)
    policy_name, policy = load_policy(args.clarify_threshold)
    expected = tuple(x for x in args.expected.split(",") if x)
    timings: dict[str, list[float]] = {"baseline": [], "current": []}
    base_ctx = {"timezone": cfg.campaign.timezone}  # what `main.py nlu classify` passes
    rows = build_rows(clips, heard, nlu, base_nlu, policy, base_ctx, expected, timings)
    (cache / "rows.jsonl").write_text(
        "".join(json.dumps(asdict(r), ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    return {
        "bench": "understanding",
        "data": str(Path(args.data).relative_to(ROOT)) if args.data == str(DATA) else args.data,
        "replies": len(replies),
        "renders_per_reply": args.renders,
        "clips": len(rows),
        "seed": args.seed,
        "nlu": getattr(nlu, "name", type(nlu).__name__),
        "paths": {
            "baseline": f"1-best transcript without hints, nlu classify's context, always act, "
            f"{base_name}",
            "current": f"decoded with hints={hints or None!r}, its confidence, n-best as "
            f"alternatives, caller's dialect, expected={list(expected)}, policy {policy_name}",
        },
        "clips_with_alternatives": sum(r.alternatives > 0 for r in rows),
        **report(rows),
        "nlu_ms": {name: percentiles(values) for name, values in timings.items()},
        "decodes": {"decoded": ear.decoded, "cached": ear.cached, "seconds": round(decode_s, 1)},
        "elapsed_s": round(time.perf_counter() - started, 1),
        "rows_file": str(cache / "rows.jsonl"),
    }


def script_prompt(path: str) -> str | None:
    """The decoding prompt a call on the script at `path` starts with (its ``asr_hints``)."""
    from callflow.script_parse import load_script
    from nlu.base import INTENTS

    return load_script(ROOT / path, known_intents=INTENTS).asr_prompt


def baseline_nlu(cfg: Any) -> tuple[Any, str]:
    """The intent model as it was before the ear-trained n-gram model: the ensemble with the
    linear model its manifest names as the baseline (``baseline_linear_dir``), when it has
    one; else the configured model itself."""
    from nlu import load_classifier

    manifest = Path(cfg.nlu.model_dir) / "manifest.json"
    try:
        ensemble = json.loads(manifest.read_text(encoding="utf-8")).get("ensemble") or {}
        old = ensemble.get("baseline_linear_dir")
    except (OSError, ValueError):
        old = None
    if cfg.nlu.engine != "model" or not old:
        from app.engines import make_nlu

        return make_nlu(cfg), "the configured NLU"
    model = load_classifier(cfg.nlu.model_dir, min_confidence=cfg.nlu.min_confidence, linear=old)
    return model, f"ensemble with {old}/"


def main(argv: list[str] | None = None) -> int:
    result = asyncio.run(run(parse_args(argv)))
    json.dump(result, sys.stdout, ensure_ascii=False, indent=1)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
