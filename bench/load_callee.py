"""The simulated callees of bench/load.py, in their own process (so their CPU and event loop
are not the robot's).

    .venv/bin/python bench/load_callee.py PLAN.json REPORT.json

PLAN.json: ``{"sip_port": BASE, "processes": K, "cache_dir": DIR, "patience_s": S,
"personas": {number: {Persona fields}}}``. It starts K listening media workers on SIP ports
BASE..BASE+K-1, renders every line once (cached in DIR, so a sweep renders each line once),
prints ``READY <pid> <pid> ...`` (its workers' pids) on stdout, answers calls until stdin
closes, then writes every call's ``CallReport`` (the timing at the SIP edge included) to
REPORT.json (mode 0o600) and exits 0; a setup problem exits 2 with one line on stderr.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from app.config import load_config  # noqa: E402
from app.engines import make_endpointer_factory, make_prompts, make_tts  # noqa: E402
from simcallee.callee import Persona, SimulatedCallee  # noqa: E402
from telephony.pool import WorkerPool  # noqa: E402

# the demo's callee voice (a slower female espeak variant: the one Whisper hears best)
CALLEE_SPEED, CALLEE_VARIANT = 110, "f2"
CALLEE_END_SILENCE_MS = 1200  # the callee's pause after the robot stops, before it answers


def persona(number: str, raw: dict[str, Any]) -> Persona:
    fields = {f.name for f in dataclasses.fields(Persona)}
    unknown = set(raw) - fields
    if unknown:
        raise ValueError(f"persona {number}: unknown fields {sorted(unknown)}")
    if "lines" in raw:
        raw = {**raw, "lines": tuple(raw["lines"])}
    return Persona(**raw)


async def _stdin_closed() -> None:
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)


async def serve(plan: dict[str, Any]) -> list[dict[str, Any]]:
    cfg = load_config(REPO / "config.yaml", env={})
    cfg.speech.prompt_cache_dir = plan["cache_dir"]
    personas = {n: persona(n, raw) for n, raw in plan["personas"].items()}
    tel = WorkerPool(
        processes=int(plan["processes"]),
        calls_per_worker=cfg.telephony.calls_per_worker,
        sip_host="127.0.0.1",
        sip_port=int(plan["sip_port"]),
        listen=True,
    )
    voice = make_prompts(cfg, make_tts(cfg, speed=CALLEE_SPEED, variant=CALLEE_VARIANT), "callee")
    with tempfile.TemporaryDirectory(prefix="load-callee-") as rec:
        callee = SimulatedCallee(
            telephony=tel,
            personas=personas,
            default=Persona(name="unknown_number", reject=404),
            voice=voice,
            make_endpointer=make_endpointer_factory(
                cfg, end_silence_ms=CALLEE_END_SILENCE_MS, max_utterance_s=120
            ),
            recordings_dir=rec,
            robot_silence_timeout_s=float(plan.get("patience_s", 20.0)),
        )
        await callee.prepare()
        await tel.start()
        try:
            pids = " ".join(str(p) for p in tel.worker_pids if p)
            print(f"READY {pids}", flush=True)
            task = asyncio.create_task(callee.serve(), name="callee.serve")
            await _stdin_closed()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        finally:
            await tel.close()
            await voice.aclose()
    return [
        {k: v for k, v in dataclasses.asdict(r).items() if k != "recording"} for r in callee.reports
    ]


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: load_callee.py PLAN.json REPORT.json", file=sys.stderr)
        return 2
    try:
        plan = json.loads(Path(argv[0]).read_text())
        reports = asyncio.run(serve(plan))
        out = Path(argv[1])
        out.write_text(json.dumps(reports))
        out.chmod(0o600)
    except (OSError, ValueError, KeyError) as exc:
        print(f"load_callee: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
