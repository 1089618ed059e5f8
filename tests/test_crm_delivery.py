"""Issue 14, item 3: CRM delivery that sales can use, against real HTTP servers on 127.0.0.1.

The stub CRMs check each request (method, path, headers, JSON shape) and deduplicate on the
idempotency key as a real receiver would. Leads, attempts and turns are rows in a real SQLite
database; the outbox rows are written by the store's own `qualified_outbox`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

import main
from app.config import load_config
from app.engines import EngineConfigError, make_crm
from campaigns.store import qualified_outbox
from crm_sync import deliver_pending
from crm_sync.deadletters import dead_letters
from crm_sync.hubspot import HubSpotCrm
from crm_sync.salesforce import SalesforceCrm
from crm_sync.summary import summarize
from crm_sync.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookCrm, verify_signature
from models import CallAttempt, Campaign, Lead, OutboxItem, Turn, init_db

REPO = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
SECRET = "whsec-test-1"
TOKEN = "pat-test-token"
CONSOLE = "https://console.example.cn"


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Answer = tuple[int, Any, float]  # status, JSON body (None: empty), seconds to wait first


@dataclass
class Stub:
    """A CRM on 127.0.0.1: `answer(request)` decides each reply; every request is kept."""

    answer: Callable[[Request], Answer]
    seen: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        me = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                req = Request(self.command, self.path, dict(self.headers), self.rfile.read(n))
                me.seen.append(req)
                status, body, wait_s = me.answer(req)
                time.sleep(wait_s)
                data = b"" if body is None else json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up (its timeout)

            do_GET = do_POST = do_PATCH = _any

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stubs() -> Iterator[list[Stub]]:
    made: list[Stub] = []
    yield made
    for s in made:
        s.close()


def stub(stubs: list[Stub], answer: Callable[[Request], Answer]) -> Stub:
    s = Stub(answer)
    stubs.append(s)
    return s


def turn(seq: int, speaker: str, intent: str | None = None, **slots: Any) -> Turn:
    return Turn(seq=seq, speaker=speaker, text="...", intent=intent, detail={"slots": slots})


def seed(tmp_path: Path, n: int = 3) -> tuple[str, sessionmaker[Session], list[int]]:
    url = f"sqlite:///{tmp_path}/crm.db"
    db = init_db(url)
    lead_ids = []
    with db.begin() as s:
        camp = Campaign(name="秋季推广", script="s")
        s.add(camp)
        s.flush()
        for i in range(n):
            lead = Lead(
                campaign_id=camp.id,
                phone=f"+861380013800{i}",
                name=f"王{i}",
                grade="A",
                status="qualified",
                extra={"公司名称": f"云启{i}号", "城市": "杭州", "行业": "零售"},
            )
            s.add(lead)
            s.flush()
            att = CallAttempt(
                lead_id=lead.id,
                campaign_id=camp.id,
                started_at=T0,
                answered_at=T0 + timedelta(seconds=5),
                disposition="completed",
                outcome="qualified",
                duration_s=80.0,
                recording_path=f"var/recordings/{i}" if i == 0 else None,
            )
            s.add(att)
            s.flush()
            for t in (
                turn(0, "robot"),
                turn(1, "callee", "affirm"),
                turn(2, "robot"),
                turn(3, "callee", "ask_price"),
                turn(4, "callee", "ask_price"),  # said twice: once in the summary
                turn(5, "callee", "book_meeting", time="明天下午", callback_at="2026-12-02T14:00"),
                turn(6, "callee", "affirm", wechat="wx_wang"),
            ):
                t.attempt_id = att.id
                s.add(t)
            qualified_outbox(s, lead.id, "A", att.id)
            lead_ids.append(lead.id)
    return url, db, lead_ids


def flaky_webhook(fail_first: int, timeout_on: set[int]) -> Callable[[Request], Answer]:
    """503 for the first `fail_first` requests, a reply too slow for the client on the request
    numbers in `timeout_on` (the CRM still processes them), then 200; deduplicates by key."""
    count = {"n": 0}
    accepted: dict[str, int] = {}

    def answer(req: Request) -> Answer:
        count["n"] += 1
        if count["n"] <= fail_first:
            return 503, {"error": "overloaded"}, 0
        key = req.headers["Idempotency-Key"]
        accepted[key] = accepted.get(key, 0) + 1
        return (200, {"ok": True}, 1.5 if count["n"] in timeout_on else 0)

    answer.accepted = accepted  # type: ignore[attr-defined]
    return answer


async def drain(db: sessionmaker[Session], crm: Any, passes: int, **kw: Any) -> None:
    for i in range(passes):  # each pass two hours later: every backoff has passed
        await deliver_pending(db, crm, now=T0 + timedelta(hours=2 * i), **kw)


async def test_flaky_crm_gets_each_lead_once(tmp_path: Path, stubs: list[Stub]) -> None:
    _, db, lead_ids = seed(tmp_path)
    answer = flaky_webhook(fail_first=4, timeout_on={5})
    crm_stub = stub(stubs, answer)
    crm = WebhookCrm(crm_stub.url + "/hook", token=TOKEN, secret=SECRET, timeout_s=0.5)
    await drain(db, crm, 6, console_url=CONSOLE)
    with db() as s:
        rows = s.query(OutboxItem).order_by(OutboxItem.id).all()
        assert all(r.sent_at is not None and r.dead_at is None for r in rows)
        keys = {f"callbot-outbox-{r.id}" for r in rows}
    accepted = answer.accepted  # type: ignore[attr-defined]
    assert set(accepted) == keys  # every lead arrived, under its own key
    # the timed-out request was processed, then retried with the same key: one lead, once
    assert sorted(accepted.values()) == [1, 1, 2]
    processed = [r for r in crm_stub.seen if r.method == "POST"][4:]
    by_lead: dict[int, set[str]] = {}
    for r in processed:
        by_lead.setdefault(r.json()["lead"]["id"], set()).add(r.headers["Idempotency-Key"])
    assert sorted(by_lead) == lead_ids and all(len(k) == 1 for k in by_lead.values())


async def test_payload_carries_what_sales_needs(tmp_path: Path, stubs: list[Stub]) -> None:
    _, db, lead_ids = seed(tmp_path, n=1)
    crm_stub = stub(stubs, lambda r: (200, None, 0))
    crm = WebhookCrm(crm_stub.url + "/hook", secret=SECRET, timeout_s=5)
    assert await deliver_pending(db, crm, now=T0, console_url=CONSOLE + "/") == (1, 0)
    [req] = crm_stub.seen
    p = req.json()
    assert p["kind"] == "lead.qualified" and p["grade"] == "A"
    assert p["lead"] == {
        "id": lead_ids[0],
        "name": "王0",
        "phone": "+8613800138000",
        "company": "云启0号",
        "city": "杭州",
        "timezone": None,
        "source": None,
        "campaign": "秋季推广",
        "extra": {"公司名称": "云启0号", "城市": "杭州", "行业": "零售"},
    }
    assert p["slots"] == {
        "time": "明天下午",
        "callback_at": "2026-12-02T14:00",
        "wechat": "wx_wang",
    }
    assert p["intents"] == ["affirm", "ask_price", "ask_price", "book_meeting", "affirm"]
    assert p["summary"] == "有兴趣；询价；约演示：明天下午；有兴趣：微信 wx_wang"
    aid = p["attempt_id"]
    assert p["links"] == {
        "call": f"{CONSOLE}/calls/{aid}",
        "transcript": f"{CONSOLE}/calls/{aid}",
        "recording": f"{CONSOLE}/calls/{aid}/recording",
    }
    assert (
        req.headers["Idempotency-Key"] == p["idempotency_key"] == f"callbot-outbox-{p['outbox_id']}"
    )


async def test_hmac_signature_verifies_with_the_documented_recipe(
    tmp_path: Path, stubs: list[Stub]
) -> None:
    _, db, _ = seed(tmp_path, n=1)
    crm_stub = stub(stubs, lambda r: (204, None, 0))
    crm = WebhookCrm(crm_stub.url + "/hook", secret=SECRET, timeout_s=5)
    await deliver_pending(db, crm, now=T0)
    [req] = crm_stub.seen
    ts, sig = req.headers[TIMESTAMP_HEADER], req.headers[SIGNATURE_HEADER]
    # the recipe, written out: HMAC-SHA256(secret, timestamp + "." + raw body), hex
    expected = hmac.new(SECRET.encode(), f"{ts}.".encode() + req.body, hashlib.sha256).hexdigest()
    assert sig == f"sha256={expected}"
    assert abs(int(ts) - time.time()) < 60
    assert verify_signature(SECRET, ts, req.body, sig)
    assert not verify_signature(SECRET, ts, req.body.replace(b"A", b"B", 1), sig)
    assert not verify_signature("other-secret", ts, req.body, sig)
    assert not verify_signature(SECRET, ts, req.body, sig, now=int(ts) + 3600)  # replayed late


async def test_dead_letter_then_replay_delivers(
    tmp_path: Path, stubs: list[Stub], capsys: pytest.CaptureFixture[str]
) -> None:
    url, db, lead_ids = seed(tmp_path, n=2)
    broken = {"on": True}
    bad_lead = lead_ids[1]

    def answer(req: Request) -> Answer:
        if broken["on"] and req.json()["lead"]["id"] == bad_lead:
            return 500, {"error": "mapping failed"}, 0
        return 200, None, 0

    crm_stub = stub(stubs, answer)
    crm = WebhookCrm(crm_stub.url + "/hook", timeout_s=5)
    await drain(db, crm, 5, max_tries=3)
    [dead] = dead_letters(db)
    assert dead.lead_id == bad_lead and dead.tries == 3 and "HTTP 500" in (dead.last_error or "")
    assert sum(1 for r in crm_stub.seen if r.json()["lead"]["id"] == bad_lead) == 3

    os.environ["DATABASE_URL"] = url
    try:
        assert main.main(["--config", str(REPO / "config.yaml"), "crm", "dead"]) == 0
        listing = capsys.readouterr().out
        assert f"{dead.id}\tlead.qualified\tlead {bad_lead}\ttries 3" in listing
        assert "+86" not in listing and "王" not in listing
        assert (
            main.main(["--config", str(REPO / "config.yaml"), "crm", "replay", "--id", "999"]) == 1
        )
        assert "999 is not a dead letter" in capsys.readouterr().err
        broken["on"] = False
        rc = main.main(
            ["--config", str(REPO / "config.yaml"), "crm", "replay", "--id", str(dead.id)]
        )
        assert rc == 0 and "replayed 1" in capsys.readouterr().out
    finally:
        del os.environ["DATABASE_URL"]
    assert dead_letters(db) == []
    assert await deliver_pending(db, crm, now=T0 + timedelta(days=1)) == (1, 0)
    with db() as s:
        assert all(r.sent_at is not None for r in s.query(OutboxItem))


async def test_a_4xx_is_a_dead_letter_at_once(tmp_path: Path, stubs: list[Stub]) -> None:
    _, db, _ = seed(tmp_path, n=1)
    crm_stub = stub(stubs, lambda r: (422, {"error": "bad field"}, 0))
    await drain(db, WebhookCrm(crm_stub.url + "/hook", timeout_s=5), 3)
    [dead] = dead_letters(db)
    assert dead.tries == 1 and len(crm_stub.seen) == 1


def hubspot_stub(contacts: dict[str, str]) -> Callable[[Request], Answer]:
    """Checks HubSpot v3 request shapes; `contacts`: phone -> contact id (the portal)."""

    def answer(req: Request) -> Answer:
        assert req.headers["Authorization"] == f"Bearer {TOKEN}"
        assert req.headers["Content-Type"].startswith("application/json")
        body = req.json()
        if (req.method, req.path) == ("POST", "/crm/v3/objects/contacts/search"):
            [group] = body["filterGroups"]
            [flt] = group["filters"]
            assert flt["propertyName"] == "phone" and flt["operator"] == "EQ"
            cid = contacts.get(flt["value"])
            results = [{"id": cid, "properties": {"phone": flt["value"]}}] if cid else []
            return 200, {"total": len(results), "results": results}, 0
        if (req.method, req.path) == ("POST", "/crm/v3/objects/contacts"):
            cid = str(100 + len(contacts))
            contacts[body["properties"]["phone"]] = cid
            return 201, {"id": cid, "properties": body["properties"]}, 0
        if req.method == "PATCH" and req.path.startswith("/crm/v3/objects/contacts/"):
            assert req.path.rsplit("/", 1)[1] in contacts.values()
            return 200, {"id": req.path.rsplit("/", 1)[1]}, 0
        if (req.method, req.path) == ("POST", "/crm/v3/objects/notes"):
            [assoc] = body["associations"]
            assert assoc["types"] == [
                {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 202}
            ]
            assert assoc["to"]["id"] in contacts.values()
            assert set(body["properties"]) == {"hs_timestamp", "hs_note_body"}
            return 201, {"id": "9001"}, 0
        return 404, {"message": "unexpected"}, 0

    return answer


async def test_hubspot_search_create_patch_and_note(tmp_path: Path, stubs: list[Stub]) -> None:
    _, db, _ = seed(tmp_path, n=2)
    contacts = {"+8613800138001": "77"}  # the second lead is already a contact
    crm_stub = stub(stubs, hubspot_stub(contacts))
    crm = HubSpotCrm(TOKEN, base_url=crm_stub.url, timeout_s=5)
    assert await deliver_pending(db, crm, now=T0, console_url=CONSOLE) == (2, 0)
    calls = [(r.method, r.path) for r in crm_stub.seen]
    assert calls == [
        ("POST", "/crm/v3/objects/contacts/search"),
        ("POST", "/crm/v3/objects/contacts"),
        ("POST", "/crm/v3/objects/notes"),
        ("POST", "/crm/v3/objects/contacts/search"),
        ("PATCH", "/crm/v3/objects/contacts/77"),
        ("POST", "/crm/v3/objects/notes"),
    ]
    created = crm_stub.seen[1].json()["properties"]
    assert created == {
        "firstname": "王0",
        "phone": "+8613800138000",
        "company": "云启0号",
        "city": "杭州",
    }
    note = crm_stub.seen[2].json()
    assert note["associations"][0]["to"]["id"] == "101"  # the contact it made
    assert "约演示：明天下午" in note["properties"]["hs_note_body"]
    assert f"{CONSOLE}/calls/" in note["properties"]["hs_note_body"]
    assert note["properties"]["hs_timestamp"].startswith("2026-12-01T02:00")


def salesforce_stub(ext: bool) -> Callable[[Request], Answer]:
    def answer(req: Request) -> Answer:
        assert req.headers["Authorization"] == f"Bearer {TOKEN}"
        if ext:
            assert req.method == "PATCH"
            assert req.path.startswith("/services/data/v60.0/sobjects/Lead/Callbot_Lead_Id__c/")
            assert "Callbot_Lead_Id__c" not in req.json()  # never in the body of an upsert
            return 201, {"id": "00Q1", "success": True, "errors": [], "created": True}, 0
        assert (req.method, req.path) == ("POST", "/services/data/v60.0/sobjects/Lead/")
        return 201, {"id": "00Q2", "success": True, "errors": []}, 0

    return answer


@pytest.mark.parametrize("ext", [False, True])
async def test_salesforce_lead_request(tmp_path: Path, stubs: list[Stub], ext: bool) -> None:
    _, db, lead_ids = seed(tmp_path, n=1)
    crm_stub = stub(stubs, salesforce_stub(ext))
    crm = SalesforceCrm(
        crm_stub.url, TOKEN, external_id_field="Callbot_Lead_Id__c" if ext else "", timeout_s=5
    )
    assert await deliver_pending(db, crm, now=T0, console_url=CONSOLE) == (1, 0)
    [req] = crm_stub.seen
    if ext:
        assert req.path.endswith(f"/Callbot_Lead_Id__c/{lead_ids[0]}")
    fields = req.json()
    assert {k: fields[k] for k in ("LastName", "Company", "Phone", "City", "Rating")} == {
        "LastName": "王0",
        "Company": "云启0号",
        "Phone": "+8613800138000",
        "City": "杭州",
        "Rating": "Hot",
    }
    assert "有兴趣；询价；约演示：明天下午" in fields["Description"]


def test_adapters_chosen_by_name_in_config() -> None:
    base = {"CALLBOT__CRM__TOKEN": TOKEN}
    hub = make_crm(load_config(None, env={**base, "CALLBOT__CRM__ENGINE": "hubspot"}))
    assert isinstance(hub, HubSpotCrm)
    sf_env = {
        **base,
        "CALLBOT__CRM__ENGINE": "salesforce",
        "CALLBOT__CRM__BASE_URL": "https://acme.my.salesforce.com",
    }
    assert isinstance(make_crm(load_config(None, env=sf_env)), SalesforceCrm)
    with pytest.raises(EngineConfigError, match="crm.token is empty"):
        make_crm(load_config(None, env={"CALLBOT__CRM__ENGINE": "hubspot"}))
    with pytest.raises(EngineConfigError, match="crm.base_url"):
        make_crm(load_config(None, env={**base, "CALLBOT__CRM__ENGINE": "salesforce"}))
    insecure = {**sf_env, "CALLBOT__CRM__BASE_URL": "http://crm.example.com"}
    with pytest.raises(EngineConfigError, match="allow_insecure_http"):
        make_crm(load_config(None, env=insecure))


def test_summary_from_turns_alone() -> None:
    turns = [
        turn(0, "robot"),
        turn(1, "callee", "repeat"),
        turn(2, "callee", "affirm"),
        turn(3, "callee", "ask_price", amount="5万"),
        turn(4, "callee", None),
        turn(5, "callee", "book_meeting", time="明天下午"),
    ]
    assert summarize(turns) == "有兴趣；询价：预算 5万；约演示：明天下午"
    assert summarize([turn(0, "robot")]) == ""
