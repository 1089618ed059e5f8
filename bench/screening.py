"""Call screening on rendered telephone audio: verdict accuracy, false "machine" on people, and
time to verdict. JSON out.

    .venv/bin/python bench/screening.py [--voices 2] [--parallel 3] [--only 关机] [--details]

Each item of ``bench/data/screening.yaml`` (carrier announcements played as early media:
空号, 关机, 停机, 无法接通, 正在通话中, 呼叫转移; after the answer: call-screening assistants,
IVRs, voicemail greetings with and without the record beep, a voicemail that opens with a short
您好 and a pause; and people's openers 喂, 喂你好, 哪位, 你好请讲 ...) is rendered with espeak-ng
voices (``--voices`` of the set: speed, variant, pitch), sent through a μ-law leg with line
noise, and played in real time into the project's own screening (``callflow.gate.Gate`` over a
fake call, the configured recognizer, ``speech.amd.AudioCues``, the configured timing).

* ``accuracy``: items whose verdict names their kind (a person: human or uncertain).
* ``machine_detected``: machines judged a machine of any kind (never the pitch).
* ``false_machine_on_humans``: people judged a machine (the call would be hung up on them).
* ``verdict_s_p50`` / ``_p95``: for early media, first frame -> the call cancelled; after the
  answer, the answer -> the verdict (greet or hang up). Wall time, decoding included.
* ``late_machine``: answered machines judged a person at first and caught by the watch that
  runs while the greeting plays (``callflow.gate.Watch``), of those let through.

Bounded: at most items x voices calls of at most ~12 s audio each, ``--parallel`` at a time
(like concurrent calls on one node: decoding is shared). Exit 0 when every item ran, 2 on a
setup problem (no espeak-ng, a bad data file).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from app.config import load_config  # noqa: E402
from app.engines import make_asr, make_screening  # noqa: E402
from callflow.gate import Gate, Screening, Watch  # noqa: E402
from callflow.screening import Kind  # noqa: E402
from core.audio import FRAME_BYTES  # noqa: E402
from core.yamlload import load_yaml  # noqa: E402
from speech.amd import beep  # noqa: E402
from speech.asr.base import Final, Partial, StreamingAsr  # noqa: E402
from speech.audio import phone_leg, silence  # noqa: E402
from speech.tts.espeak import MANDARIN_VOICE, EspeakTts  # noqa: E402
from telephony.base import DialRequest  # noqa: E402
from telephony.fake import FakeCall, FakeTelephony, answers, no_answer  # noqa: E402

# espeak reads Mandarin slowly: 150-175 wpm is nearer a person's pace; 110 is the simulated
# callee's voice (tests/test_e2e_screening.py), where "你好，请问你找谁" lasts 4.4 s
VOICES = ({"speed": 150}, {"speed": 175, "variant": "f2"}, {"speed": 110, "variant": "f2"})
PEOPLE = frozenset({Kind.HUMAN, Kind.UNCERTAIN})
AFTER_S = 4.0  # silence played after an answered item's line
WATCH_S = 10.0  # the bench's wait on the watch after a person verdict (its own window decides)


class SetupError(Exception):
    pass


@dataclass(frozen=True)
class Item:
    kind: Kind
    text: str
    early: bool = False  # played as early media (never answered)
    beep: bool = False  # a record tone after the line
    pause_after: str = ""  # the line's first words, then 1.2 s of silence, then the rest


@dataclass
class Outcome:
    item: Item
    voice: int
    kind: Kind
    reason: str
    verdict_s: float
    late: Kind | None = None  # what the watch caught after a person verdict
    heard: list[str] = field(default_factory=list)

    @property
    def final_kind(self) -> Kind:
        return self.late if self.late is not None else self.kind


def load_items(path: Path) -> list[Item]:
    try:
        data = load_yaml(path, what="screening data") or {}
    except (OSError, ValueError) as exc:
        raise SetupError(f"cannot read {path}: {exc}") from None
    items = []
    for i, raw in enumerate(data.get("items") or []):
        try:
            items.append(
                Item(
                    Kind(raw["kind"]),
                    str(raw["text"]),
                    early=bool(raw.get("early", False)),
                    beep=bool(raw.get("beep", False)),
                    pause_after=str(raw.get("pause_after", "")),
                )
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise SetupError(f"{path}: items[{i}]: {exc}") from None
    if not items:
        raise SetupError(f"{path}: no items")
    return items


async def render(item: Item, tts: EspeakTts, seed: int) -> bytes:
    """The item's telephone audio: the line (with its pause, beep), a μ-law leg, line noise."""
    if not item.text:  # a person who says nothing
        pcm = silence(0.2)
    elif item.pause_after and item.text.startswith(item.pause_after):
        rest = item.text[len(item.pause_after) :].lstrip("，, ")
        pcm = await tts.synthesize(item.pause_after) + silence(1.2) + await tts.synthesize(rest)
    else:
        pcm = await tts.synthesize(item.text)
    if item.beep:
        pcm += silence(0.3) + beep()
    return phone_leg(pcm, "ulaw", -60.0, seed)


async def play(call: FakeCall, pcm: bytes, *, repeat_s: float = 0.0) -> None:
    """Push `pcm` as 20 ms frames in real time (again and again for `repeat_s`)."""
    t0 = time.monotonic()
    i = 0
    while call.ended is None:
        frames = [pcm[k : k + FRAME_BYTES] for k in range(0, len(pcm), FRAME_BYTES)]
        for frame in frames:
            if call.ended is not None:
                return
            call.push_audio(frame)
            i += 1
            await asyncio.sleep(max(0.0, t0 + i * 0.02 - time.monotonic()))
        if time.monotonic() - t0 >= repeat_s:
            return


async def screen_early(item: Item, pcm: bytes, asr: StreamingAsr, screening: Screening) -> Outcome:
    loop_s = len(pcm) / 16000 + 0.8
    tel = FakeTelephony(scenario=no_answer(ring_s=2 * loop_s + 0.5))  # the carrier's 480
    call = await tel.dial(DialRequest("sip:bench@sim"))
    gate = Gate(call, asr=asr, screening=screening)
    t0 = time.monotonic()
    player = asyncio.create_task(play(call, pcm + silence(0.8), repeat_s=2 * loop_s))
    try:
        await gate.early(aiter(call.events()))
    finally:
        player.cancel()
        await gate.aclose()
    took = time.monotonic() - t0
    verdict = gate.early_verdict
    kind, reason = (verdict.kind, verdict.reason) if verdict else (Kind.UNCERTAIN, "none")
    return Outcome(item, 0, kind, reason, took, heard=list(gate.heard))


async def screen_answered(
    item: Item, pcm: bytes, asr: StreamingAsr, screening: Screening
) -> Outcome:
    tel = FakeTelephony(scenario=answers())
    call = await tel.dial(DialRequest("sip:bench@sim"))
    gate = Gate(call, asr=asr, screening=screening)
    await gate.early(aiter(call.events()))
    t0 = time.monotonic()
    player = asyncio.create_task(play(call, pcm + silence(AFTER_S)))
    late: Kind | None = None
    try:
        verdict = await gate.answered()
        took = time.monotonic() - t0
        if not verdict.machine:
            late = await watch(call, gate, asr)
    finally:
        player.cancel()
        await gate.aclose()
    return Outcome(item, 0, verdict.kind, verdict.reason, took, late, list(gate.heard))


async def watch(call: FakeCall, gate: Gate, asr: StreamingAsr) -> Kind | None:
    """What the watch run while the greeting plays catches in the next seconds."""
    w: Watch = gate.watch()
    stream = asr.stream()

    async def hear() -> None:
        async for ev in stream:
            if isinstance(ev, Partial | Final):
                w.hear(ev.text, final=isinstance(ev, Final))

    hearing = asyncio.create_task(hear())
    audio = aiter(call.audio())
    try:
        async with asyncio.timeout(WATCH_S):
            while True:
                frame = await anext(audio)
                stream.push(frame)
                verdict = w.push(frame)
                if verdict is not None:
                    return verdict.kind
    except (TimeoutError, StopAsyncIteration):
        return None
    finally:
        await stream.aclose()
        hearing.cancel()


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


def summarize(outcomes: list[Outcome], details: bool) -> dict[str, Any]:
    machines = [o for o in outcomes if o.item.kind.machine]
    people = [o for o in outcomes if not o.item.kind.machine]

    def right(o: Outcome) -> bool:
        want, got = o.item.kind, o.final_kind
        return got in PEOPLE if want in PEOPLE else got is want

    caught = [o for o in machines if o.final_kind.machine]
    let_through = [o for o in machines if not o.kind.machine and not o.item.early]
    times = [o.verdict_s for o in outcomes]
    report: dict[str, Any] = {
        "items": len(outcomes),
        "accuracy": round(sum(map(right, outcomes)) / max(1, len(outcomes)), 3),
        "machine_detected": round(len(caught) / max(1, len(machines)), 3),
        "false_machine_on_humans": round(
            sum(o.final_kind.machine for o in people) / max(1, len(people)), 3
        ),
        "late_machine": f"{sum(o.late is not None for o in let_through)}/{len(let_through)}",
        "verdict_s_p50": pct(times, 0.5),
        "verdict_s_p95": pct(times, 0.95),
        "human_greet_s_p50": pct([o.verdict_s for o in people], 0.5),
        "human_greet_s_max": max((round(o.verdict_s, 2) for o in people), default=None),
        "by_kind": {
            kind.value: f"{sum(right(o) for o in group)}/{len(group)}"
            for kind in Kind
            if (group := [o for o in outcomes if o.item.kind is kind])
        },
    }
    if details:
        report["details"] = [
            {
                "text": o.item.text,
                "voice": o.voice,
                "want": o.item.kind.value,
                "got": o.kind.value,
                "late": o.late.value if o.late else None,
                "reason": o.reason,
                "s": round(o.verdict_s, 2),
                "heard": o.heard,
            }
            for o in outcomes
        ]
    return report


async def run(args: argparse.Namespace) -> dict[str, Any]:
    items = [i for i in load_items(args.data) if args.only in i.text]
    cfg = load_config(str(REPO / "config.yaml"), env={})
    cfg.callflow.screening = True
    screening = make_screening(cfg)
    assert screening is not None
    asr = make_asr(cfg)
    voices = [EspeakTts(MANDARIN_VOICE, **v) for v in VOICES[: args.voices]]
    jobs = [(item, v) for v in range(len(voices)) for item in items]
    gate = asyncio.Semaphore(args.parallel)

    async def one(item: Item, v: int) -> Outcome:
        pcm = await render(item, voices[v], seed=v)
        async with gate:
            screen = screen_early if item.early else screen_answered
            out = await screen(item, pcm, asr, screening)
        out.voice = v
        return out

    try:
        outcomes = await asyncio.gather(*(one(i, v) for i, v in jobs))
    finally:
        aclose = getattr(asr, "aclose", None)
        if aclose is not None:
            await aclose()
    return summarize(list(outcomes), args.details)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=REPO / "bench" / "data" / "screening.yaml")
    ap.add_argument("--voices", type=int, default=2, help=f"espeak voices, 1..{len(VOICES)}")
    ap.add_argument("--parallel", type=int, default=3, help="items screened at once, 1..8")
    ap.add_argument("--only", default="", help="only items whose text contains this")
    ap.add_argument("--details", action="store_true", help="add each item's verdict")
    args = ap.parse_args(argv)
    if not 1 <= args.voices <= len(VOICES) or not 1 <= args.parallel <= 8:
        print(f"screening: --voices must be 1..{len(VOICES)}, --parallel 1..8", file=sys.stderr)
        return 2
    try:
        report = asyncio.run(run(args))
    except SetupError as exc:
        print(f"screening: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
