"""`main.py run` (node.run_node) composed from config alone: fake telephony/ASR/TTS/NLU, a real
SQLite database and a real HTTP webhook on 127.0.0.1 as the CRM. The node dials every due lead
of the active campaigns and, side by side, delivers the outbox; cancelling it shuts it down.

Also the ``Runtime`` both `run` and `demo` use: start-up and shutdown order, a failing close
that skips no other, one dialer per script, and the dial plan built from the config."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app import runtime
from app.config import Config, load_config
from app.demo import demo_plan
from app.engines import EngineConfigError, make_crm
from app.node import run_node
from app.runtime import Runtime, dial_plan
from bus import InProcessBus
from campaigns.compliance import CallingWindow
from models import CallAttempt, Campaign, Lead, OutboxItem, init_db
from telephony.fake import FakeTelephony
from tests.nodeenv import fake_node_env


class Webhook:
    """A CRM stand-in: records each JSON POST and its headers; answers `status`."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, Any], dict[str, str]]] = []
        self.status = 200
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.received.append((json.loads(body), dict(self.headers)))
                self.send_response(hook.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/leads"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


def node_env(tmp_path: Path, url: str) -> dict[str, str]:
    return fake_node_env(
        tmp_path,
        CALLBOT__CRM__ENGINE="webhook",
        CALLBOT__CRM__WEBHOOK_URL=url,
        CALLBOT__CRM__TOKEN="s3cret",
        CALLBOT__CRM__POLL_S="0.05",
    )


async def wait_until(cond: Any, within_s: float = 15.0) -> None:
    async with asyncio.timeout(within_s):
        while not cond():  # noqa: ASYNC110 - polling the database and the webhook
            await asyncio.sleep(0.05)


async def test_node_dials_active_campaigns_and_delivers_the_outbox(
    tmp_path: Path, webhook: Webhook
) -> None:
    cfg = load_config("config.yaml", env=node_env(tmp_path, webhook.url))
    db = init_db(cfg.database.url)
    with db.begin() as s:
        active = Campaign(name="spring", script=cfg.callflow.script)
        paused = Campaign(name="paused", script=cfg.callflow.script, status="paused")
        s.add_all([active, paused])
        s.flush()
        s.add_all([Lead(campaign_id=active.id, phone=f"1380000000{i}") for i in (1, 2)])
        s.add(Lead(campaign_id=paused.id, phone="13800000009"))
        # a lead qualified earlier, still waiting for the CRM
        s.add(OutboxItem(kind="lead.qualified", payload={"grade": "A", "outcome": "qualified"}))

    def attempts() -> list[CallAttempt]:
        with db() as s:
            return list(s.scalars(select(CallAttempt)).all())

    node = asyncio.create_task(run_node(cfg, poll_s=0.05))
    try:
        await wait_until(lambda: len(webhook.received) == 1)
        await wait_until(lambda: len(attempts()) == 2 and all(a.ended_at for a in attempts()))
    finally:
        node.cancel()
        results = await asyncio.gather(node, return_exceptions=True)
    assert isinstance(results[0], asyncio.CancelledError)  # stopped cleanly, nothing raised

    body, headers = webhook.received[0]
    assert body["kind"] == "lead.qualified" and body["grade"] == "A"
    assert headers["Authorization"] == "Bearer s3cret"
    assert headers["Idempotency-Key"] == f"callbot-outbox-{body['outbox_id']}"
    with db() as s:
        assert s.scalars(select(OutboxItem)).one().sent_at is not None
        dialed = {s.get(Lead, a.lead_id).phone for a in attempts()}  # type: ignore[union-attr]
    assert dialed == {"13800000001", "13800000002"}  # not the paused campaign's lead


def test_crm_engine_errors_name_the_setting(tmp_path: Path) -> None:
    env = {"CALLBOT__CRM__ENGINE": "webhook"}
    with pytest.raises(EngineConfigError, match="crm.webhook_url"):
        make_crm(load_config(None, env=env))
    with pytest.raises(EngineConfigError, match="unknown crm engine 'zoho'"):
        make_crm(load_config(None, env={"CALLBOT__CRM__ENGINE": "zoho"}))
    with pytest.raises(EngineConfigError, match="crm.token is empty"):
        make_crm(load_config(None, env={"CALLBOT__CRM__ENGINE": "salesforce"}))
    assert make_crm(load_config(None, env={})) is None


# --- the Runtime that `run` and `demo` share -------------------------------------------------


def fake_config(tmp_path: Path) -> Config:
    env = node_env(tmp_path, "http://127.0.0.1:9/unused") | {"CALLBOT__CRM__ENGINE": "none"}
    return load_config("config.yaml", env=env)


def record_lifecycle(monkeypatch: pytest.MonkeyPatch, events: list[str]) -> None:
    """Make every engine the Runtime starts or closes note it in `events`; the bus's close
    fails, as a broker gone away would."""

    class Bus(InProcessBus):
        async def start(self) -> None:
            events.append("bus.start")

        async def close(self) -> None:
            events.append("bus.close")
            raise RuntimeError("broker gone")

    class Telephony(FakeTelephony):
        async def start(self) -> None:
            events.append("telephony.start")
            await super().start()

        async def close(self) -> None:
            events.append("telephony.close")
            await super().close()

    def noting_close(name: str, make: Any) -> Any:
        def build(*args: Any, **kwargs: Any) -> Any:
            engine = make(*args, **kwargs)
            close = engine.aclose

            async def aclose() -> None:
                events.append(f"{name}.close")
                await close()

            monkeypatch.setattr(engine, "aclose", aclose)
            return engine

        return build

    monkeypatch.setattr(runtime, "make_bus", lambda *a, **k: Bus())
    monkeypatch.setattr(runtime, "make_telephony", lambda *a, **k: Telephony())
    monkeypatch.setattr(runtime, "make_asr", noting_close("asr", runtime.make_asr))
    monkeypatch.setattr(runtime, "make_prompts", noting_close("prompts", runtime.make_prompts))


async def test_runtime_closes_in_reverse_order_even_when_one_close_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[str] = []
    record_lifecycle(monkeypatch, events)
    async with Runtime(fake_config(tmp_path)) as rt:
        assert events == ["bus.start", "telephony.start"]  # the bus is up before any call
        assert rt.crm is None
    assert events[2:] == ["telephony.close", "bus.close", "prompts.close", "asr.close"]
    assert "closing the bus failed" in caplog.text


async def test_runtime_that_fails_to_start_closes_what_it_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    record_lifecycle(monkeypatch, events)

    class Broken(FakeTelephony):
        async def start(self) -> None:
            raise OSError("no SIP port")

    monkeypatch.setattr(runtime, "make_telephony", lambda *a, **k: Broken())
    with pytest.raises(OSError, match="no SIP port"):
        async with Runtime(fake_config(tmp_path)):
            pytest.fail("the body must not run")
    assert events == ["bus.start", "bus.close", "prompts.close", "asr.close"]


async def test_dialer_for_builds_one_dialer_per_script_with_its_lines_rendered(
    tmp_path: Path,
) -> None:
    cfg = fake_config(tmp_path)
    async with Runtime(cfg) as rt:
        dialer = await rt.dialer_for(cfg.callflow.script)
        lines = set(rt.script(cfg.callflow.script).lines())
        assert lines and rt.prompts.stats.misses == len(lines)
        assert await rt.dialer_for(cfg.callflow.script) is dialer
        assert rt.prompts.stats.misses == len(lines)  # nothing rendered twice


def test_dial_plan_comes_from_the_config_and_the_demo_overrides_only_its_own_parts() -> None:
    env = {
        "CALLBOT__TELEPHONY__TRUNK_URI": "sip:{phone}@10.0.0.5:5060",
        "CALLBOT__TELEPHONY__USERNAME": "acct",
        "CALLBOT__CAMPAIGN__CALLING_HOURS": "10:00-18:30",
        "CALLBOT__CAMPAIGN__MAX_ATTEMPTS": "5",
        "CALLBOT__CAMPAIGN__MAX_CONCURRENT_CALLS": "7",
    }
    cfg = load_config(None, env=env)
    plan = dial_plan(cfg)
    assert plan.trunk.uri("13800000001") == "sip:13800000001@10.0.0.5:5060"
    assert plan.trunk.username == "acct"
    assert plan.window == CallingWindow.parse("10:00-18:30")
    assert (plan.max_attempts, plan.max_concurrent) == (5, 7)
    demo = demo_plan(cfg)
    assert demo.window == CallingWindow.parse("00:00-24:00")
    assert (demo.max_attempts, demo.node) == (1, "demo")
    assert (demo.trunk, demo.max_concurrent) == (plan.trunk, plan.max_concurrent)
