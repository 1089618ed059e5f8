"""Issue 9, item 4: no false CRM delivery.

A redirect from the webhook used to turn the POST into a body-less GET to the redirect target,
carrying the Bearer token, and the outbox row was marked delivered. Real HTTP servers on
127.0.0.1 stand in for the CRM and for the redirect target.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from app.config import load_config
from app.engines import EngineConfigError, make_crm
from crm_sync import deliver_pending
from crm_sync.base import CrmError
from crm_sync.webhook import WebhookCrm
from models import Campaign, Lead, OutboxItem, init_db
from tests.nodeenv import fake_node_env

REPO = Path(__file__).resolve().parent.parent
TOKEN = "s3cret-token"


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class Server:
    """Records every request (any method); answers `status`, with `location` if set."""

    def __init__(self, status: int = 200, location: str | None = None) -> None:
        self.seen: list[Seen] = []
        self.status, self.location = status, location
        me = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                me.seen.append(Seen(self.command, self.path, dict(self.headers), body))
                self.send_response(me.status)
                if me.location:
                    self.send_header("Location", me.location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = do_PUT = do_HEAD = _any

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def target() -> Iterator[Server]:
    s = Server(200)
    yield s
    s.close()


@pytest.fixture
def crm() -> Iterator[Server]:
    s = Server(200)
    yield s
    s.close()


def seed(tmp_path: Path) -> sessionmaker[Session]:
    db = init_db(f"sqlite:///{tmp_path}/o.db")
    with db.begin() as s:
        c = Campaign(name="c", script="s")
        s.add(c)
        s.flush()
        lead = Lead(campaign_id=c.id, phone="1")
        s.add(lead)
        s.flush()
        s.add(OutboxItem(kind="lead.qualified", lead_id=lead.id, payload={"grade": "A"}))
    return db


def row(db: sessionmaker[Session]) -> OutboxItem:
    with db() as s:
        item = s.query(OutboxItem).one()
        s.expunge(item)
        return item


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
async def test_redirecting_crm_is_not_delivered_and_target_gets_nothing(
    tmp_path: Path, crm: Server, target: Server, code: int
) -> None:
    crm.status, crm.location = code, target.url
    db = seed(tmp_path)
    adapter = WebhookCrm(crm.url, token=TOKEN, timeout_s=5)
    assert await deliver_pending(db, adapter) == (0, 1)
    item = row(db)
    assert item.sent_at is None
    assert item.last_error is not None and "redirect" in item.last_error
    assert f"HTTP {code}" in item.last_error
    assert target.seen == []  # no request, so no token, reached the redirect target
    assert [s.method for s in crm.seen] == ["POST"]


async def test_a_redirect_is_a_delivery_failure_with_a_reason(crm: Server, target: Server) -> None:
    crm.status, crm.location = 302, target.url
    with pytest.raises(CrmError, match=r"redirect.*not followed") as err:
        await WebhookCrm(crm.url, token=TOKEN, timeout_s=5).deliver("lead.qualified", {})
    assert TOKEN not in str(err.value) and target.url not in str(err.value)


@pytest.mark.parametrize("code", [200, 201, 202, 204])
async def test_2xx_marks_delivered(tmp_path: Path, crm: Server, code: int) -> None:
    crm.status = code
    db = seed(tmp_path)
    assert await deliver_pending(db, WebhookCrm(crm.url, token=TOKEN, timeout_s=5)) == (1, 0)
    assert row(db).sent_at is not None
    [seen] = crm.seen
    assert seen.method == "POST" and seen.headers["Authorization"] == f"Bearer {TOKEN}"
    assert b'"kind": "lead.qualified"' in seen.body


@pytest.mark.parametrize(
    "url",
    ["http://crm.example.com/hook", "http://10.0.0.5:8080/hook", "http://localhost.example/x"],
)
def test_token_over_plain_http_to_a_remote_host_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="crm.allow_insecure_http"):
        WebhookCrm(url, token=TOKEN)
    env = {
        "CALLBOT__CRM__ENGINE": "webhook",
        "CALLBOT__CRM__WEBHOOK_URL": url,
        "CALLBOT__CRM__TOKEN": TOKEN,
    }
    with pytest.raises(EngineConfigError) as err:
        make_crm(load_config(None, env=env))
    msg = str(err.value)
    assert "crm.allow_insecure_http" in msg and "\n" not in msg and TOKEN not in msg
    allowed = make_crm(load_config(None, env={**env, "CALLBOT__CRM__ALLOW_INSECURE_HTTP": "true"}))
    assert isinstance(allowed, WebhookCrm)


@pytest.mark.parametrize(
    ("url", "token"),
    [
        ("http://127.0.0.1:9/hook", TOKEN),
        ("http://127.1.2.3/hook", TOKEN),
        ("http://localhost:9/hook", TOKEN),
        ("http://[::1]:9/hook", TOKEN),
        ("https://crm.example.com/hook", TOKEN),
        ("http://crm.example.com/hook", None),  # no secret to leak
    ],
)
def test_loopback_http_and_https_are_allowed(url: str, token: str | None) -> None:
    assert WebhookCrm(url, token=token).name == "webhook"


def test_node_refuses_an_insecure_crm_at_start_in_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        (REPO / "config.yaml").read_text(encoding="utf-8")
        + "\n# (the test's overrides follow in the environment)\n",
        encoding="utf-8",
    )
    env = fake_node_env(
        tmp_path,
        inherit=True,
        CALLBOT__CRM__ENGINE="webhook",
        CALLBOT__CRM__WEBHOOK_URL="http://crm.example.invalid/hook",
        CALLBOT__CRM__TOKEN=TOKEN,
    )
    try:
        done = subprocess.run(
            [sys.executable, "main.py", "--config", str(cfg), "run"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the node started with a token over plain http to a remote host")
    err = done.stderr.strip()
    assert done.returncode != 0
    assert "crm.allow_insecure_http" in err and "\n" not in err and TOKEN not in err
