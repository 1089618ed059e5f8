"""The console over HTTP (FastAPI's TestClient, a real SQLite database): who may do what.

Unsigned requests get 401 (API) or a redirect to /login (pages); forms without the session's
CSRF token get 403; viewers cannot run campaigns or see full numbers; an oversized upload is
refused with 413 and a message naming the limit; a lead list shows its validation report."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from models import Campaign, CampaignStatus, Lead
from tests.webenv import PASSWORD, make_app, sign_in
from web.auth import check_password, new_token

SCRIPT = "callflow/scripts/saas_demo.yaml"
LEADS_CSV = (
    "手机号码,客户名称\n13800000001,张三\n13800000002,李四\n12345,坏号码\n13800000001,重复\n"
)


@pytest.fixture
def app(tmp_path: Path):
    return make_app(tmp_path)


@pytest.fixture
def client(app) -> TestClient:
    return TestClient(app)


def _db(app):
    return app.state.web.db


def _campaign(app, name: str = "spring", status: str = CampaignStatus.DRAFT) -> int:
    with _db(app).begin() as s:
        camp = Campaign(name=name, script=SCRIPT, status=status)
        s.add(camp)
        s.flush()
        s.add(Lead(campaign_id=camp.id, phone="+8613812345678", name="王五"))
        return camp.id


def test_pages_redirect_to_login_and_the_api_answers_401(client: TestClient) -> None:
    pages = ("/", "/campaigns", "/calls/live", "/calls/1", "/leads", "/dnc", "/reports/daily")
    for path in (*pages, "/crm/dead"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login", path
    for path in ("/api/me", "/api/campaigns", "/api/leads", "/api/calls/1"):
        r = client.get(path)
        assert r.status_code == 401, path
        assert r.headers["www-authenticate"] == "Bearer"
    assert client.get("/api/me", headers={"Authorization": "Bearer cbt_wrong"}).status_code == 401
    assert client.get("/login").status_code == 200
    assert client.get("/static/style.css").status_code == 200


def test_a_wrong_password_is_refused_and_a_right_one_signs_in(client: TestClient) -> None:
    page = client.get("/login").text
    token = page.split('name="csrf" value="')[1].split('"')[0]
    r = client.post("/login", data={"name": "ada", "password": "nope-nope", "csrf": token})
    assert r.status_code == 401 and 'id="login-error"' in r.text
    sign_in(client, "ada")
    assert client.get("/campaigns").status_code == 200


def test_the_session_cookie_is_httponly_and_samesite_lax(client: TestClient) -> None:
    token = client.get("/login").text.split('name="csrf" value="')[1].split('"')[0]
    r = client.post(
        "/login", data={"name": "olga", "password": PASSWORD, "csrf": token}, follow_redirects=False
    )
    cookies = [c.lower() for c in r.headers.get_list("set-cookie") if "callbot_session" in c]
    assert cookies and "httponly" in cookies[0] and "samesite=lax" in cookies[0]


def test_form_posts_without_the_csrf_token_are_refused(app, client: TestClient) -> None:
    cid = _campaign(app)
    token = sign_in(client, "olga")
    for data in ({}, {"csrf": "forged"}):
        r = client.post(f"/campaigns/{cid}/start", data=data)
        assert r.status_code == 403 and "CSRF" in r.text
        r = client.post("/dnc/add", data={"phone": "13900000000", **data})
        assert r.status_code == 403
    with _db(app)() as s:
        assert s.get(Campaign, cid).status == CampaignStatus.DRAFT  # nothing happened
    r = client.post(f"/campaigns/{cid}/start", data={"csrf": token}, follow_redirects=False)
    assert r.status_code == 303
    with _db(app)() as s:
        assert s.get(Campaign, cid).status == CampaignStatus.RUNNING
    # a CSRF token of another session does not do either
    other = TestClient(app)
    sign_in(other, "olga")
    r = other.post(f"/campaigns/{cid}/pause", data={"csrf": token})
    assert r.status_code == 403


def test_a_viewer_cannot_run_campaigns_and_sees_numbers_masked(app, client: TestClient) -> None:
    cid = _campaign(app)
    token = sign_in(client, "vic")
    r = client.post(f"/campaigns/{cid}/start", data={"csrf": token})
    assert r.status_code == 403
    with _db(app)() as s:
        assert s.get(Campaign, cid).status == CampaignStatus.DRAFT
    page = client.get("/leads").text
    assert "+86138****5678" in page and "13812345678" not in page
    assert "13812345678" not in client.get("/leads?q=1381234").text  # no probing by digits
    assert client.post("/dnc/add", data={"csrf": token, "phone": "13900000000"}).status_code == 403
    api_token = new_token(_db(app), "vic")
    auth = {"Authorization": f"Bearer {api_token}"}
    assert client.post(f"/api/campaigns/{cid}/start", headers=auth).status_code == 403
    leads = client.get("/api/leads", headers=auth).json()
    assert [lead["phone"] for lead in leads] == ["+86138****5678"]


def test_an_operator_sees_full_numbers_and_runs_campaigns_by_api(app, client: TestClient) -> None:
    cid = _campaign(app)
    sign_in(client, "olga")
    assert "+8613812345678" in client.get("/leads").text
    auth = {"Authorization": f"Bearer {new_token(_db(app), 'olga')}"}
    assert client.get("/api/me", headers=auth).json() == {"name": "olga", "role": "operator"}
    r = client.post(f"/api/campaigns/{cid}/start", headers=auth)
    assert r.json() == {"campaign": "spring", "before": "draft", "after": "running"}
    assert (
        client.post(f"/api/campaigns/{cid}/complete", headers=auth).json()["after"] == "completed"
    )
    assert client.post(f"/api/campaigns/{cid}/start", headers=auth).status_code == 409
    # the API ignores the session cookie: a token is required
    assert client.get("/api/me").status_code == 401


def test_an_upload_shows_the_validation_report(app, client: TestClient) -> None:
    token = sign_in(client, "olga")
    r = client.post(
        "/campaigns",
        data={"csrf": token, "name": "autumn", "script": SCRIPT},
        follow_redirects=False,
    )
    assert r.status_code == 303
    cid = int(r.headers["location"].rsplit("/", 1)[1])
    files = {"file": ("leads.csv", LEADS_CSV.encode("gbk"), "text/csv")}
    r = client.post(f"/campaigns/{cid}/upload", data={"csrf": token}, files=files)
    assert r.status_code == 200, r.text
    assert 'id="accepted">2<' in r.text and 'id="duplicates">1<' in r.text
    assert 'id="rejected-count">1<' in r.text and "<td>4</td>" in r.text  # the bad row, line 4
    with _db(app)() as s:
        camp = s.get(Campaign, cid)
        assert camp.status == CampaignStatus.DRAFT and len(camp.leads) == 2


def test_an_oversized_upload_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    client = TestClient(make_app(tmp_path, CALLBOT__WEB__MAX_UPLOAD_MB="0.01"))
    token = sign_in(client, "olga")
    big = b"phone\n" + b"13800000001\n" * 2000  # 24 kB > 10 kB
    files = {"file": ("leads.csv", big, "text/csv")}
    r = client.post("/campaigns/1/upload", data={"csrf": token}, files=files)
    assert r.status_code == 413
    assert "Upload too large" in r.text and "0.01 MB" in r.text


def test_a_call_page_shows_turns_and_no_recording_when_there_is_none(
    app, client: TestClient
) -> None:
    from models import CallAttempt, Turn

    cid = _campaign(app)
    with _db(app).begin() as s:
        lead = s.query(Lead).filter_by(campaign_id=cid).one()
        attempt = CallAttempt(lead_id=lead.id, campaign_id=cid, outcome="qualified")
        s.add(attempt)
        s.flush()
        s.add(Turn(attempt_id=attempt.id, seq=0, speaker="robot", text="您好"))
        s.add(
            Turn(
                attempt_id=attempt.id,
                seq=1,
                speaker="callee",
                text="多少钱",
                intent="ask_price",
                confidence=0.91,
                detail={"slots": {"budget": "5万"}},
            )
        )
        aid = attempt.id
    sign_in(client, "vic")
    page = client.get(f"/calls/{aid}").text
    assert "ask_price" in page and "0.91" in page and "budget=5万" in page
    assert 'id="no-recording"' in page and "+86138****5678" in page
    assert client.get(f"/calls/{aid}/recording").status_code == 404


def test_passwords_are_stored_hashed(app) -> None:
    from models import User

    with _db(app)() as s:
        stored = s.query(User).filter_by(name="ada").one().password_hash
    assert PASSWORD not in stored and stored.startswith("$argon2")
    assert check_password(_db(app), "ada", PASSWORD) is not None
    assert check_password(_db(app), "nobody", PASSWORD) is None


def _track(path: Path, samples: int, value: int) -> None:
    import wave

    import numpy as np

    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(np.full(samples, value, dtype="<i2").tobytes())


def test_a_recording_plays_as_one_stereo_wav_for_signed_in_users_only(
    app,
    client: TestClient,
    tmp_path: Path,
) -> None:
    import io
    import wave

    from models import CallAttempt

    folder = tmp_path / "rec" / "2026-12-10" / "1-abc"
    folder.mkdir(parents=True)
    _track(folder / "callee.wav", 8000, 100)
    _track(folder / "robot.wav", 4000, -100)
    cid = _campaign(app)
    with _db(app).begin() as s:
        lead = s.query(Lead).filter_by(campaign_id=cid).one()
        attempt = CallAttempt(lead_id=lead.id, campaign_id=cid, recording_path=str(folder))
        s.add(attempt)
        s.flush()
        aid = attempt.id
    assert client.get(f"/calls/{aid}/recording", follow_redirects=False).status_code == 303
    sign_in(client, "vic")
    assert f'src="/calls/{aid}/recording"' in client.get(f"/calls/{aid}").text
    r = client.get(f"/calls/{aid}/recording")
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
    with wave.open(io.BytesIO(r.content)) as w:
        assert (w.getnchannels(), w.getframerate(), w.getnframes()) == (2, 8000, 8000)
        frames = w.readframes(8000)
    import numpy as np

    stereo = np.frombuffer(frames, dtype="<i2").reshape(-1, 2)
    assert stereo[0].tolist() == [100, -100] and stereo[-1].tolist() == [100, 0]  # padded


def _dead_letters(app, n: int) -> list[int]:
    """`n` outbox rows the delivery gave up on (crm_sync.deadletters), and one still pending."""
    from datetime import UTC, datetime

    from models import OutboxItem

    cid = _campaign(app)
    now = datetime.now(UTC).replace(tzinfo=None)
    with _db(app).begin() as s:
        lead = s.query(Lead).filter_by(campaign_id=cid).one()
        rows = [
            OutboxItem(
                kind="lead.qualified",
                lead_id=lead.id,
                tries=8,
                last_error="HTTP 500 from the CRM",
                dead_at=now,
                next_try_at=now,
            )
            for _ in range(n)
        ]
        s.add_all([*rows, OutboxItem(kind="lead.qualified", lead_id=lead.id)])
        s.flush()
        return [r.id for r in rows]


def _dead_ids(app) -> list[int]:
    from crm_sync.deadletters import dead_letters

    return [d.id for d in dead_letters(_db(app))]


def test_dead_letters_are_listed_and_operators_replay_them(app, client: TestClient) -> None:
    first, second, third = _dead_letters(app, 3)
    # a viewer reads the list, without numbers or replay buttons, and cannot replay
    token = sign_in(client, "vic")
    page = client.get("/crm/dead").text
    assert 'id="dead-total">3<' in page and "HTTP 500 from the CRM" in page
    assert 'class="replay"' not in page and "13812345678" not in page
    assert client.post("/crm/replay", data={"csrf": token, "id": first}).status_code == 403
    # an operator replays one row (CSRF-checked), then the rest
    op = TestClient(app)
    token = sign_in(op, "olga")
    page = op.get("/crm/dead").text
    assert page.count('class="replay"') == 3 and 'id="replay-all"' in page
    assert op.post("/crm/replay", data={"id": first}).status_code == 403  # no CSRF token
    assert _dead_ids(app) == [first, second, third]
    r = op.post("/crm/replay", data={"csrf": token, "id": first}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/crm/dead?replayed=1"
    assert _dead_ids(app) == [second, third]
    r = op.post("/crm/replay", data={"csrf": token, "id": first})  # no longer a dead letter
    assert r.status_code == 409 and "not a dead letter" in r.text
    assert op.post("/crm/replay", data={"csrf": token, "id": "x"}).status_code == 400
    r = op.post("/crm/replay", data={"csrf": token, "all": "1"})
    assert r.status_code == 200 and 'id="replayed"' in r.text and 'id="dead-total">0<' in r.text
    assert _dead_ids(app) == []
    with _db(app)() as s:
        from models import OutboxItem

        replayed = s.get(OutboxItem, second)
        assert replayed is not None and replayed.tries == 0 and replayed.next_try_at is None


def test_labels_are_chinese_by_default_and_english_on_request(client: TestClient) -> None:
    sign_in(client, "vic")
    assert "<h1>活动</h1>" in client.get("/campaigns").text
    assert "<h1>Campaigns</h1>" in client.get("/campaigns?lang=en").text
    assert "<h1>CRM dead letters</h1>" in client.get("/crm/dead").text  # the choice is kept
    assert "<h1>CRM 死信</h1>" in client.get("/crm/dead?lang=zh").text
