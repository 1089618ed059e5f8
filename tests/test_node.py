"""`main.py run` (node.run_node) composed from config alone: fake telephony/ASR/TTS/NLU, a real
SQLite database and a real HTTP webhook on 127.0.0.1 as the CRM. The node dials every due lead
of the active campaigns and, side by side, delivers the outbox; cancelling it shuts it down."""

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

from app.config import load_config
from app.engines import EngineConfigError, make_crm
from models import CallAttempt, Campaign, Lead, OutboxItem, init_db
from app.node import run_node


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
    return {
        "DATABASE_URL": f"sqlite:///{tmp_path}/node.db",
        "CALLBOT__TELEPHONY__ENGINE": "fake",
        "CALLBOT__SPEECH__ASR_ENGINE": "fake",
        "CALLBOT__SPEECH__TTS_ENGINE": "fake",
        "CALLBOT__SPEECH__VAD_CONFIRM": "false",
        "CALLBOT__SPEECH__PROMPT_CACHE_DIR": str(tmp_path / "cache"),
        "CALLBOT__NLU__ENGINE": "fake",
        "CALLBOT__CALLFLOW__NO_INPUT_TIMEOUT_S": "0.05",
        "CALLBOT__CAMPAIGN__CALLING_HOURS": "00:00-24:00",
        "CALLBOT__CRM__ENGINE": "webhook",
        "CALLBOT__CRM__WEBHOOK_URL": url,
        "CALLBOT__CRM__TOKEN": "s3cret",
        "CALLBOT__CRM__POLL_S": "0.05",
    }


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
    assert headers["Idempotency-Key"] == str(body["outbox_id"])
    with db() as s:
        assert s.scalars(select(OutboxItem)).one().sent_at is not None
        dialed = {s.get(Lead, a.lead_id).phone for a in attempts()}  # type: ignore[union-attr]
    assert dialed == {"13800000001", "13800000002"}  # not the paused campaign's lead


def test_crm_engine_errors_name_the_setting(tmp_path: Path) -> None:
    env = {"CALLBOT__CRM__ENGINE": "webhook"}
    with pytest.raises(EngineConfigError, match="crm.webhook_url"):
        make_crm(load_config(None, env=env))
    with pytest.raises(EngineConfigError, match="unknown crm engine 'salesforce'"):
        make_crm(load_config(None, env={"CALLBOT__CRM__ENGINE": "salesforce"}))
    assert make_crm(load_config(None, env={})) is None
