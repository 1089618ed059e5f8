"""Concurrent calls over real SIP: how many calls one node holds. JSON out, and a PNG plot.

    .venv/bin/python bench/load.py [--calls N | --sizes 8,16 | --sweep] [--path old|new|both]
                                   [--spread-s 10] [--seed 1] [--out build/bench/load]
                                   [--device cpu|cuda]

Each point (one N on one path) runs in a fresh child process: the robot node's real parts (a
``Runtime`` with its dialer, media worker pool of ceil(N/4) pjsua2 processes, the configured
streaming Whisper with its VAD, the intent model, the prompt cache) dial N leads through
Kamailio on loopback acting as the carrier (digest auth, record-route) to N simulated callees
in another process (``bench/load_callee.py``: ceil(N/4) listening media workers; Kamailio
routes each call to its worker by the port written into the dialled number).

**Traffic model.** All N leads are dialled at once; the callees answer as a Poisson process
(exponential gaps, mean ``spread_s / N``, so N answers spread over about ``spread_s``). Of
every 10 calls, 8 are talkers, 1 is silent (answers, never speaks: the script's silence path)
and 1 is a machine (alternately a powered-off announcement in early media and a voicemail
greeting with a record tone). A talker says one of four real Mandarin conversations
(espeak-ng ``cmn-latn-pinyin``, the demo's callee voice; rendered once into a cache under
``--out``), its first line over the robot's greeting 0.8-2.0 s after it starts (the barge-in),
every later line 1.2 s after the robot stops (the callee's pause). A callee's patience (20 s)
counts only the robot's silence.

**Measured at the SIP edge** (the callee's process, ``time.monotonic`` host-wide):

* ``heard_ms``: a callee line's end of speech (its last loud frame as it went out on RTP) to
  the first robot audio the callee received after it; p50/p95 over every answered line.
* ``barge_stop_ms``: the barge-in line's onset to the end of the robot audio it cut.
* ``failed`` / ``fail_reasons``: calls not dialled, not ended normally (disposition), a
  callee that gave up waiting, a point that ran out of time.
* ``frames``: robot frames the callees received, and ``late_pct``: frames missing in gaps of
  100 ms or more (late or lost).
* ``cpu_cores``: CPU seconds / wall seconds per component: ``media_robot``, ``media_callee``
  (psutil per worker process), ``callee`` (the callee's main process), ``brain`` (the node's
  process), split by thread group (``loop``: event loop, sessions, VAD, worker IPC; ``asr``:
  the Whisper threads; ``native``: CTranslate2, OpenBLAS/OpenMP, onnxruntime threads;
  ``executor``: NLU, Silero, database) and by timer (``nlu``, ``vad``: thread CPU time inside
  ``classify`` and the VAD's ``push``); ``loop_lag``: how late a 20 ms heartbeat wakes.
* ``rss_mb``: peak resident memory per component.
* ``robot_turn_ms``: where a turn's time went as the robot's sessions recorded it (end of
  speech -> endpoint -> final -> intent, and their own heard-latency stamp, a cross-check),
  with ``asr`` (decodes, batches, queue waits, early endpoints) and
  ``tts_renders_during_calls`` (robot lines not found in the prompt cache).

A point is ``ok`` when p95 heard <= 800 ms, no call failed and late_pct <= 1 %.
``sustained_calls``: the highest N whose point and every smaller point are ok (0: none).
``--path old`` is today's defaults (one decode at a time, no batching, BLAS threads as many
as cores); ``--path new`` the faster settings (``PATHS``); ``both`` runs both in one run and
adds ``ratio`` (new / old sustained calls). ``--device cuda`` runs Whisper on the GPU on both
paths (``DEVICES``; scripts/gpu_sweep.sh); ``--set section.key=value`` tries another setting
on the new path (e.g. ``speech.asr_workers=2``).

Bounded: each point's calls are hung up at ``spread_s + 150`` s; at most 8 points a path.
Exit 0 when every point ran (targets are reported, not enforced), 1 when a point failed to
run, 2 on a setup problem (no Kamailio, no Whisper model, bad arguments).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as a script: `app` (for --set) is importable
SWEEP = (8, 16, 32, 48, 64, 100)
TARGET_HEARD_P95_MS = 800.0
TARGET_LATE_PCT = 1.0


@dataclass(frozen=True)
class PathSpec:
    """A point's settings: config overrides (section.key -> value) and native thread env."""

    config: dict[str, Any]
    env: dict[str, str]


_CORES = str(os.cpu_count() or 1)
PATHS = {
    # today's defaults: one Whisper decode at a time, none batched, BLAS threads unpinned
    "old": PathSpec(
        config={"speech.asr_workers": 1, "speech.asr_batch_ms": 0},
        env={"OPENBLAS_NUM_THREADS": _CORES, "OMP_NUM_THREADS": _CORES},
    ),
    # no stray BLAS threads. On a CPU nothing is batched and one decode slot runs: a batch
    # costs the sum of its utterances there and every one waits for the whole (N=32: 11 s per
    # batch against 1.4 s per decode, the same utterances per second), and two slots made each
    # decode twice as slow on a contended CPU. Batching is the GPU's (DEVICES); try it here
    # with --set speech.asr_batch_ms=10.
    "new": PathSpec(
        config={"speech.asr_workers": 1, "speech.asr_batch_ms": 0},
        env={"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"},
    ),
}


# --device cuda (scripts/gpu_sweep.sh, docs/capacity.md): Whisper on the GPU for both paths;
# the new path batches more there, where a batch costs little more than one utterance
DEVICES: dict[str, dict[str, dict[str, Any]]] = {
    "cpu": {"old": {}, "new": {}},
    "cuda": {
        "old": {"speech.asr_device": "cuda", "speech.asr_compute_type": "float16"},
        "new": {
            "speech.asr_device": "cuda",
            "speech.asr_compute_type": "float16",
            "speech.asr_workers": 2,
            "speech.asr_batch_ms": 10,
            "speech.asr_batch_max": 16,
        },
    },
}


def overrides(path: str, device: str) -> dict[str, Any]:
    """The config overrides of `path` on `device` (section.key -> value)."""
    return {**PATHS[path].config, **DEVICES[device][path]}


def setting(text: str) -> tuple[str, Any]:
    """``section.key=value`` (``--set``) as (key, value typed like the config's default);
    ValueError naming the problem."""
    from app.config import Config

    key, sep, raw = text.partition("=")
    section, _, name = key.partition(".")
    current = getattr(getattr(Config(), section, None), name, None)
    if not sep or current is None or isinstance(current, dict | list):
        raise ValueError(f"--set {text!r}: expected section.key=value of a config setting")
    if isinstance(current, bool):
        if raw.lower() not in ("true", "false"):
            raise ValueError(f"--set {key}: expected true or false")
        return key, raw.lower() == "true"
    try:
        return key, type(current)(raw)
    except ValueError:
        raise ValueError(f"--set {key}: {raw!r} is not a {type(current).__name__}") from None


def point_ok(p: dict[str, Any]) -> bool:
    p95 = p.get("heard_ms", {}).get("p95")
    return (
        p.get("error") is None
        and p95 is not None
        and p95 <= TARGET_HEARD_P95_MS
        and p.get("failed", 1) == 0
        and p.get("frames", {}).get("late_pct", 100.0) <= TARGET_LATE_PCT
    )


def sustained(points: list[dict[str, Any]]) -> int:
    """The highest N whose point and every smaller point are ok."""
    best = 0
    for p in sorted(points, key=lambda p: p["calls"]):
        if not point_ok(p):
            break
        best = p["calls"]
    return best


def run_point(path: str, calls: int, args: argparse.Namespace) -> dict[str, Any]:
    """One point in a fresh child process with the path's native-thread environment."""
    env = {**os.environ, **PATHS[path].env, "PYTHONPATH": str(REPO)}
    with tempfile.TemporaryDirectory(prefix="load-point-") as tmp:
        out = Path(tmp) / "point.json"
        argv = [sys.executable, "-m", "bench.load_point", path, str(calls), str(out)]
        argv += ["--spread-s", str(args.spread_s), "--seed", str(args.seed)]
        argv += ["--cache", str(Path(args.out) / "prompts"), "--device", args.device]
        if path == "new":
            argv += [f"--set={text}" for text in args.set]
        limit = args.spread_s + 300
        proc = subprocess.Popen(argv, env=env, cwd=REPO)
        try:
            proc.wait(limit)
        except subprocess.TimeoutExpired:
            _stop(proc)  # SIGTERM first: the point stops its carrier and callees
            return {"path": path, "calls": calls, "error": f"point ran over {limit:.0f} s"}
        except BaseException:
            _stop(proc)
            raise
        if proc.returncode == 2:
            raise SetupError(f"the {path} point with {calls} calls could not start")
        if not out.exists():
            return {"path": path, "calls": calls, "error": f"exit {proc.returncode}"}
        result: dict[str, Any] = json.loads(out.read_text())
        result["ok"] = point_ok(result)
        return result


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _terminated(_signum: int, _frame: Any) -> None:
    raise SystemExit(143)


class SetupError(Exception):
    """The bench cannot run here (one line says why)."""


def plot(report: dict[str, Any], png: Path) -> None:
    """Heard latency (p50, p95) and CPU cores per component against N, per path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (lat, cpu) = plt.subplots(1, 2, figsize=(12, 4.5))
    for path, data in report["paths"].items():
        pts = [p for p in data["points"] if p.get("error") is None]
        ns = [p["calls"] for p in pts]
        for q, style in (("p50", ":"), ("p95", "-")):
            lat.plot(ns, [p["heard_ms"][q] for p in pts], style, marker="o", label=f"{path} {q}")
        for comp in ("brain", "media_robot", "media_callee"):
            cpu.plot(ns, [p["cpu_cores"].get(comp, 0) for p in pts], marker="o",
                     label=f"{path} {comp}")  # fmt: skip
    lat.axhline(TARGET_HEARD_P95_MS, color="grey", lw=0.8)
    lat.set(xlabel="concurrent calls", ylabel="heard latency (ms)", title="turn latency heard")
    cpu.set(xlabel="concurrent calls", ylabel="CPU (cores)", title="CPU per component")
    for ax in (lat, cpu):
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)


def machine() -> dict[str, Any]:
    load1, _, _ = os.getloadavg()
    return {"cores": os.cpu_count(), "load_avg_1m_at_start": round(load1, 2)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    sizes = SWEEP if args.sweep else args.sizes or (args.calls,)
    paths = ("old", "new") if args.path == "both" else (args.path,)
    report: dict[str, Any] = {"machine": machine(), "spread_s": args.spread_s, "paths": {}}
    report["device"] = args.device
    report["new_path_settings"] = overrides("new", args.device) | dict(map(setting, args.set))
    points: dict[str, list[dict[str, Any]]] = {path: [] for path in paths}
    for n in sizes:  # the paths alternate, so a change in the machine's load hits both
        for path in paths:
            point = run_point(path, n, args)
            print(json.dumps(_brief(point), ensure_ascii=False), file=sys.stderr, flush=True)
            points[path].append(point)
    for path, pts in points.items():
        report["paths"][path] = {"points": pts, "sustained_calls": sustained(pts)}
    report["sustained_calls"] = report["paths"][paths[-1]]["sustained_calls"]
    if len(paths) == 2:
        old = report["paths"]["old"]["sustained_calls"]
        report["ratio"] = round(report["sustained_calls"] / old, 2) if old else None
    report["table"] = table(report)
    return report


def _brief(p: dict[str, Any]) -> dict[str, Any]:
    keys = ("path", "calls", "ok", "failed", "heard_ms", "error")
    return {k: p.get(k) for k in keys}


def table(report: dict[str, Any]) -> list[str]:
    """One line per point: latency, failures, late frames, CPU cores per component."""
    head = "path  N    p50   p95  stop95 fail late%  brain(loop asr native exec nlu vad) media r/c"
    rows = [head]
    for path, data in report["paths"].items():
        for p in data["points"]:
            if p.get("error"):
                rows.append(f"{path:<4} {p['calls']:>3}  error: {p['error']}")
                continue
            c, h = p["cpu_cores"], p["heard_ms"]
            rows.append(
                f"{path:<4} {p['calls']:>3} {_f(h['p50'])} {_f(h['p95'])} "
                f"{_f(p['barge_stop_ms']['p95'])} {p['failed']:>4} "
                f"{p['frames']['late_pct']:>5.2f}  {c['brain']:.2f}({c['loop']:.2f} "
                f"{c['asr']:.2f} {c['native']:.2f} {c['executor']:.2f} {c['nlu']:.2f} "
                f"{c['vad']:.2f}) {c['media_robot']:.2f}/{c['media_callee']:.2f}"
            )
    return rows


def _f(v: float | None) -> str:
    return f"{v:>5.0f}" if v is not None else "    -"


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(sorted({int(x) for x in text.split(",") if x}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
    if not sizes or not all(1 <= n <= 200 for n in sizes) or len(sizes) > 8:
        raise argparse.ArgumentTypeError("1 to 8 values, each 1..200")
    return sizes


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=8, help="concurrent calls (one point)")
    ap.add_argument("--sweep", action="store_true", help=f"N = {', '.join(map(str, SWEEP))}")
    ap.add_argument("--sizes", type=_sizes, default=(), help="N values, e.g. 8,16,32")
    ap.add_argument("--path", choices=("old", "new", "both"), default="new")
    ap.add_argument("--spread-s", type=float, default=10.0, help="answers spread over this")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=str(REPO / "build" / "bench" / "load"))
    ap.add_argument("--device", choices=sorted(DEVICES), default="cpu", help="Whisper runs here")
    ap.add_argument(
        "--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
        help="a further config override for the new path (repeatable), e.g. speech.asr_workers=2",
    )  # fmt: skip
    args = ap.parse_args(argv)
    if not 1 <= args.calls <= 200:
        ap.error("--calls must be 1..200")
    if not 0 < args.spread_s <= 120:
        ap.error("--spread-s must be in (0, 120]")
    for text in args.set:
        try:
            setting(text)
        except ValueError as exc:
            ap.error(str(exc))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # SIGTERM stops like ^C: the running point is stopped too (its carrier and callees)
    signal.signal(signal.SIGTERM, _terminated)
    try:
        report = run(args)
    except SetupError as exc:
        print(f"load: {exc}", file=sys.stderr)
        return 2
    png = out / "load.png"
    plot(report, png)
    report["plot"] = str(png)
    text = json.dumps(report, ensure_ascii=False)
    (out / "load.json").write_text(text)
    print(text)
    failed = any(p.get("error") for d in report["paths"].values() for p in d["points"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
