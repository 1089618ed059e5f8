"""The in-process bus, and the MQTT bus against a real Mosquitto broker on loopback."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bus import InProcessBus, Message, make_bus, topic_matches

MOSQUITTO = shutil.which("mosquitto") or (
    "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
)


@pytest.mark.parametrize(
    ("pattern", "topic", "ok"),
    [
        ("call/+", "call/ended", True),
        ("call/#", "call/ended/x", True),
        ("#", "lead/qualified", True),
        ("call/+", "call/ended/x", False),
        ("lead/qualified", "lead/qualified", True),
        ("lead/qualified", "lead", False),
    ],
)
def test_topic_patterns(pattern: str, topic: str, ok: bool) -> None:
    assert topic_matches(pattern, topic) is ok


async def next_message(it: AsyncIterator[Message]) -> Message:
    return await asyncio.wait_for(anext(it), 5)


async def test_in_process_bus_delivers_to_matching_subscribers() -> None:
    bus = InProcessBus()
    calls = bus.subscribe("call/+")
    leads = bus.subscribe("lead/#")
    first = asyncio.ensure_future(anext(calls))
    second = asyncio.ensure_future(anext(leads))
    await asyncio.sleep(0)  # both subscriptions registered
    await bus.publish("call/ended", {"attempt_id": 1})
    await bus.publish("lead/qualified", {"lead_id": 2})
    assert (await first).payload == {"attempt_id": 1}
    assert (await second).topic == "lead/qualified"
    await calls.aclose()
    await leads.aclose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[int]:
    if MOSQUITTO is None:
        pytest.skip("mosquitto is not installed (scripts/setup.sh installs it)")
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("mosquitto did not start") from None
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(5)


async def test_mqtt_bus_round_trip_between_two_nodes(broker: int) -> None:
    prefix = f"t{time.monotonic_ns()}"  # one namespace per test
    a = make_bus(f"mqtt://127.0.0.1:{broker}/{prefix}")
    b = make_bus(f"mqtt://127.0.0.1:{broker}/{prefix}")
    await a.start()
    await b.start()
    try:
        sub = b.subscribe("call/+")
        first = asyncio.ensure_future(next_message(sub))
        await asyncio.sleep(0.3)  # the SUBSCRIBE reaches the broker
        await a.publish("call/ended", {"attempt_id": 7, "outcome": "qualified"})
        await a.publish("lead/qualified", {"lead_id": 3})  # not matched
        msg = await first
        assert msg.topic == "call/ended"
        assert msg.payload == {"attempt_id": 7, "outcome": "qualified"}
    finally:
        await a.close()
        await b.close()


async def test_mqtt_subscriptions_on_one_client_each_get_their_messages(broker: int) -> None:
    prefix = f"t{time.monotonic_ns()}"
    pub = make_bus(f"mqtt://127.0.0.1:{broker}/{prefix}")
    node = make_bus(f"mqtt://127.0.0.1:{broker}/{prefix}")
    await pub.start()
    await node.start()
    try:
        calls, leads = node.subscribe("call/+"), node.subscribe("lead/#")
        got_call = asyncio.ensure_future(next_message(calls))
        got_lead = asyncio.ensure_future(next_message(leads))
        await asyncio.sleep(0.3)
        await pub.publish("lead/qualified", {"lead_id": 3})
        await pub.publish("call/ended", {"attempt_id": 7})
        assert (await got_call).payload == {"attempt_id": 7}
        assert (await got_lead).payload == {"lead_id": 3}
    finally:
        await pub.close()
        await node.close()


def test_bad_mqtt_url_is_named() -> None:
    with pytest.raises(ValueError, match="mqtt://"):
        make_bus("http://127.0.0.1:1883")
