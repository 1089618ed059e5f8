"""bench/load.py keeps working: two real calls from the dialer through Kamailio to the simulated
callees, measured at the SIP edge (the sweep itself is a benchmark, not a test). And the pure
parts: the traffic model, the figures taken from a callee's timing, the sustained-calls rule."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.load import overrides, point_ok, setting, sustained
from simcallee.carrier import kamailio_binary

REPO = Path(__file__).resolve().parent.parent


def _point(n: int, p95: float, failed: int = 0, late: float = 0.0) -> dict[str, object]:
    return {"calls": n, "heard_ms": {"p95": p95}, "failed": failed, "frames": {"late_pct": late}}


def test_sustained_calls_is_the_highest_n_with_every_smaller_point_ok() -> None:
    points = [_point(8, 500), _point(16, 700), _point(32, 900), _point(48, 600)]
    assert sustained(points) == 16  # 48 passing after 32 failed does not count
    assert sustained([_point(8, 500, failed=1)]) == 0
    assert not point_ok(_point(8, 500, late=1.5)) and point_ok(_point(8, 800))


def test_settings_are_typed_like_the_config_and_bad_ones_refused() -> None:
    assert setting("speech.asr_workers=2") == ("speech.asr_workers", 2)
    assert setting("speech.vad_confirm=false") == ("speech.vad_confirm", False)
    for bad in ("speech.nope=1", "speech.asr_workers=two", "asr_workers", "speech.vad_confirm=1"):
        with pytest.raises(ValueError, match="--set"):
            setting(bad)
    assert overrides("old", "cpu")["speech.asr_batch_ms"] == 0
    assert overrides("new", "cuda")["speech.asr_device"] == "cuda"


def test_traffic_model_mixes_talkers_silence_and_machines_routed_by_port() -> None:
    from bench.load_point import traffic

    tr = traffic(20, 30000, 5, spread_s=10, seed=3)
    kinds = list(tr.kinds.values())
    assert kinds.count("talker") == 16 and kinds.count("silent") == 2
    assert kinds.count("machine") == 2
    for number, raw in tr.personas.items():
        assert 30000 <= int(number[1:6]) < 30005  # Kamailio routes by these digits
        if tr.kinds[number] == "talker":
            assert 0.8 <= raw["barge_in_s"] <= 2.0 and raw["lines"]
    rings = sorted(raw["ring_ms"] for raw in tr.personas.values())
    assert rings[0] >= 300 and rings[-1] <= 25_300


def test_heard_latency_and_barge_stop_from_a_callee_timeline() -> None:
    from bench.load_point import barge_stop, heard_latencies

    rep = {
        # the callee spoke over the greeting at 1.0-1.5, then 5.0-6.0, then 9.0-9.5
        "speech": [(1.0, 1.5), (5.0, 6.0), (9.0, 9.5)],
        # the greeting ran 0.2-1.2 (cut 200 ms after the onset), replies at 2.1 and 6.7
        "robot_audio": [(0.2, 1.2), (2.1, 4.0), (6.7, 8.0)],
    }
    got, unanswered = heard_latencies(rep)
    assert [round(x) for x in got] == [600, 700] and unanswered == 1
    assert round(barge_stop(rep) or 0) == 200


@pytest.mark.sip
@pytest.mark.slow
def test_two_calls_through_the_harness(tmp_path: Path) -> None:
    if kamailio_binary() is None:
        pytest.skip("kamailio is not installed")
    if not (REPO / "build" / "models" / "whisper-base" / "model.bin").exists():
        pytest.skip("the Whisper model is not built")
    argv = [sys.executable, "bench/load.py", "--calls", "2", "--path", "new", "--spread-s", "2"]
    proc = subprocess.run(
        [*argv, "--out", str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=400
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    [point] = report["paths"]["new"]["points"]
    assert point["calls"] == 2 and point["failed"] == 0, point["fail_reasons"]
    assert point["heard_ms"]["n"] >= 2 and point["heard_ms"]["p50"] > 0
    assert point["barge_stop_ms"]["n"] >= 1
    assert point["frames"]["received"] > 1000  # seconds of robot audio at 50 frames/s
    assert point["cpu_cores"]["brain"] > 0 and point["cpu_cores"]["media_robot"] > 0
    assert point["rss_mb"]["brain"] > 100
    assert point["robot_turn_ms"]["asr_ms"]["p50"] is not None
    assert point["tts_renders_during_calls"] == 0  # every fixed line came from the cache
    assert report["sustained_calls"] in (0, 2)
    assert (tmp_path / "load.png").stat().st_size > 1000
    assert json.loads((tmp_path / "load.json").read_text())["paths"]
