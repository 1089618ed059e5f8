"""The console in a real browser: Playwright driving Debian's Chromium (/usr/bin/chromium,
never a downloaded one) against `main.py serve --node` as a child process.

The call that appears live is a real SIP call: the node's pool of pjsua2 media workers dials
through Kamailio (playing the carrier: digest challenge, record-route) to the simulated callee
(`main.py callee`, another process with its own media worker), with recording on and a script
that carries a recording notice. The robot speaks with espeak; its recognizer and intent model
are the fakes, because this call is driven by a key (the callee persona 13800000203 presses 2,
which the script maps to booking a demo), so it is fast and always ends the same way. Whisper
and the intent model over SIP are tests/test_e2e_calls.py's.

Screenshots of each main page go to build/artifacts/screenshots/ (listed in SHOTS_INDEX).
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import time
import urllib.request
import wave
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from app.config import load_config
from models import OutboxItem, init_db
from tests.nodeenv import ROOT, fake_node_env
from tests.webenv import PASSWORD
from web.auth import add_user

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = ROOT / "build" / "artifacts" / "screenshots"
LEAD = "13800000203"  # simcallee/personas.yaml: presses 2 once the robot's first line ends
LEADS = f"手机号码,客户名称\n{LEAD},张三\n98765,坏号码\n"
NOTICE = "本次通话可能会被录音。"
SCRIPT = f"""\
name: browser_call
start: greeting
recording_notice: {NOTICE}
dtmf: {{"2": book_meeting}}
global: {{book_meeting: end_booked}}
states:
  greeting:
    say: 您好，我是云启科技的AI语音助理小安。想预约产品演示，请按2。
  end_booked:
    say: 好的，顾问会尽快联系您安排演示，再见。
    end: qualified
  end_no_response:
    say: 再见。
    end: no_response
"""
START_S = 90.0  # a process (media worker, espeak voices) ready within this
CALL_S = 90.0  # the call dialled, answered, spoken and stored within this


# --- child processes ---------------------------------------------------------------------


def _spawn(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`main.py ARGV` in its own session (so its media workers can be ended with it), its
    output in `log` (a pipe nobody reads would fill and stall it)."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "main.py", *argv],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _stop(proc: subprocess.Popen[bytes], sig: int) -> None:
    """`sig` to the process, SIGKILL to what is left of its session after 20 s."""
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(sig)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # a media worker its parent did not reap


def _wait_ready(proc: subprocess.Popen[bytes], log: Path, ready: Callable[[], bool]) -> None:
    """Until `ready()` is true; fails with the log's tail when the process exits first."""
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            pytest.fail(f"{log.name}: exited {proc.returncode}: {tail}")
        if ready():
            return
        time.sleep(0.2)
    pytest.fail(f"{log.name}: not ready in {START_S:.0f} s")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except OSError:
        return False


# --- fixtures ----------------------------------------------------------------------------


@pytest.fixture
def carrier(tmp_path: Path) -> Iterator[str]:
    """The simulated callee (`main.py callee`) behind Kamailio: the trunk's host:port."""
    pytest.importorskip("pjsua2")
    from simcallee.carrier import free_port
    from tests.test_trunk_kamailio import KAMAILIO, kamailio

    if KAMAILIO is None:
        pytest.skip("kamailio binary not installed (apt kamailio)")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLBOT__")}
    env |= {
        "CALLBOT__CALLEE__SIP_PORT": str(port),
        "CALLBOT__CALLEE__RECORDINGS_DIR": str(tmp_path / "callee-recordings"),
        "CALLBOT__SPEECH__PROMPT_CACHE_DIR": str(tmp_path / "callee-cache"),
    }
    log = tmp_path / "callee.log"
    callee = _spawn(["callee"], env, log)
    try:
        _wait_ready(callee, log, lambda: b"simulated callee listening" in log.read_bytes())
        with kamailio(tmp_path, port) as trunk:
            yield trunk.host
    finally:
        _stop(callee, signal.SIGINT)


@pytest.fixture
def server(tmp_path: Path, carrier: str) -> Iterator[str]:
    """`main.py serve --node` on a free port over a fresh database with one operator: real
    media workers dialling through `carrier`, recording on, the fake recognizer and NLU."""
    from simcallee.carrier import free_port
    from tests.test_trunk_kamailio import PASSWORD as TRUNK_PASSWORD
    from tests.test_trunk_kamailio import USER

    scripts = tmp_path / "scripts"  # the console offers the scripts beside the configured one
    scripts.mkdir()
    (scripts / "browser_call.yaml").write_text(SCRIPT, encoding="utf-8")
    env = fake_node_env(
        tmp_path,
        inherit=True,
        CALLBOT__TELEPHONY__ENGINE="pjsua2",
        CALLBOT__TELEPHONY__TRUNK_URI=f"sip:{{phone}}@{carrier}",
        CALLBOT__TELEPHONY__USERNAME=USER,
        CALLBOT__TELEPHONY__PASSWORD=TRUNK_PASSWORD,
        CALLBOT__TELEPHONY__RING_TIMEOUT_S="10",
        CALLBOT__SPEECH__TTS_ENGINE="espeak",
        CALLBOT__CALLFLOW__SCRIPT=str(scripts / "browser_call.yaml"),
        CALLBOT__CALLFLOW__NO_INPUT_TIMEOUT_S="20",  # a key drives this call: no reprompt
        CALLBOT__CALLFLOW__MAX_CALL_S="60",
        CALLBOT__RECORDING__ENABLED="true",
        CALLBOT__RECORDING__FOLDER=str(tmp_path / "recordings"),
        CALLBOT__WEB__SECRET_FILE=str(tmp_path / "web-secret"),
        CALLBOT__CRM__ENGINE="none",
    )
    add_user(init_db(env["DATABASE_URL"]), "olga", PASSWORD, "operator")
    port = free_port()
    log = tmp_path / "serve.log"
    proc = _spawn(["serve", "--node", "--port", str(port)], env, log)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(proc, log, lambda: _answers(f"{base}/login"))
        yield base
    finally:
        _stop(proc, signal.SIGTERM)


@pytest.fixture
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: run scripts/setup.sh (apt install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"],
        )
        try:
            yield b
        finally:
            b.close()


# --- helpers -----------------------------------------------------------------------------


def _shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _channels(body: bytes) -> tuple[int, np.ndarray]:
    """A WAV file's sample rate and its samples, one column per channel."""
    with wave.open(io.BytesIO(body), "rb") as w:
        assert w.getsampwidth() == 2
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2")
        return w.getframerate(), pcm.reshape(-1, w.getnchannels()).astype(np.float64)


def _sign_in(page: Page, server: str) -> None:
    page.goto(f"{server}/campaigns")
    assert page.url.endswith("/login")  # not signed in: sent to sign in
    _shot(page, "01-login")
    page.fill("input[name=name]", "olga")
    page.fill("input[name=password]", PASSWORD)
    page.click("#sign-in")
    page.wait_for_url(f"{server}/campaigns")


def _create_and_upload(page: Page, tmp_path: Path) -> str:
    """A campaign with the recorded script and the lead list; its page's URL."""
    page.fill("input[name=name]", "browser-spring")
    page.select_option("select[name=script]", str(tmp_path / "scripts" / "browser_call.yaml"))
    page.click("#create-campaign")
    page.wait_for_selector("#upload-leads")
    leads = tmp_path / "leads.csv"
    leads.write_text(LEADS, encoding="utf-8")
    page.set_input_files("input[type=file]", str(leads))
    page.click("#upload-leads")
    page.wait_for_selector("#upload-summary")
    assert page.inner_text("#accepted") == "1"
    assert page.inner_text("#rejected-count") == "1"
    assert "3" in page.inner_text("#rejected")  # the bad number's line
    _shot(page, "02-upload-report")
    return page.url.split("/upload")[0]


def _watch_the_call(live: Page) -> None:
    """The call shows up live (a row, then its turn's state), then ends with a link."""
    live.wait_for_selector("tr.live[data-lead]", timeout=CALL_S * 1000)
    live.wait_for_function(
        "[...document.querySelectorAll('tr[data-lead]')]"
        ".some(tr => !['', 'dialing'].includes(tr.cells[3].textContent))",
        timeout=CALL_S * 1000,
    )
    _shot(live, "04-live-call")
    live.wait_for_selector("tr.ended a.call-link", timeout=CALL_S * 1000)
    assert live.inner_text("tr.ended td:nth-child(7)") == "qualified"
    _shot(live, "05-live-call-ended")


def _check_the_recording(page: Page, server: str) -> None:
    """The player loads and plays the recording; the file is a stereo WAV holding the
    callee (left) and the robot (right), fetched with the page's own session cookie."""
    page.wait_for_function(
        "(a => a.readyState >= 1 && a.duration > 2)(document.getElementById('recording'))",
        timeout=20_000,
    )
    page.eval_on_selector("#recording", "a => a.play()")
    page.wait_for_function("document.getElementById('recording').currentTime > 0.2")
    src = page.get_attribute("#recording", "src")
    assert src is not None
    r = page.request.get(f"{server}{src}")
    assert r.ok and r.headers["content-type"] == "audio/wav"
    rate, pcm = _channels(r.body())
    assert rate == 8000 and pcm.shape[1] == 2 and len(pcm) / rate > 2.0
    # left: the callee, who only pressed a key (RFC 4733 events, not audio): near silence;
    # right: the robot's notice and lines (tests/test_e2e_edge.py matches both tracks' words)
    rms = np.sqrt((pcm**2).mean(axis=0))
    assert rms[1] > 100 and rms[0] < rms[1] / 10, rms
    first = pcm[: 3 * rate, 1]  # the notice opens the call
    assert np.sqrt((first**2).mean()) > 100


def _open_the_call(live: Page, server: str) -> None:
    live.click("tr.ended a.call-link")
    live.wait_for_selector("#turns")
    assert live.inner_text("#call-outcome") == "qualified"
    turns = live.inner_text("#turns")
    assert NOTICE in turns and "AI语音助理" in turns
    _check_the_recording(live, server)
    _shot(live, "06-call-detail")


def _open_the_report(page: Page, server: str) -> None:
    today = datetime.now(ZoneInfo(load_config(None).campaign.timezone)).date().isoformat()
    page.goto(f"{server}/reports/daily?day={today}")
    funnel = "table[data-table=funnel]"
    assert page.inner_text(f"{funnel} tr[data-key=dialled] td[data-col=count]") == "1"
    assert page.inner_text(f"{funnel} tr[data-key=qualified] td[data-col=count]") == "1"
    assert page.locator("svg.chart").count() >= 4  # funnel, outcomes, intents, by hour
    assert page.locator("svg.chart rect.bar").count() >= 4
    _shot(page, "07-daily-report")


def _dead_letter(server_db: str) -> int:
    """One outbox row the CRM delivery gave up on (what `crm_sync.outbox` leaves)."""
    now = datetime.now(UTC).replace(tzinfo=None)
    with init_db(server_db).begin() as s:
        row = OutboxItem(
            kind="lead.qualified", tries=8, last_error="HTTP 503 from the CRM", dead_at=now
        )
        s.add(row)
        s.flush()
        return row.id


def _replay_a_dead_letter(page: Page, server: str, db_url: str) -> None:
    outbox_id = _dead_letter(db_url)
    page.goto(f"{server}/crm/dead")
    assert page.inner_text("#dead-total") == "1"
    _shot(page, "11-crm-dead-letters")
    page.click(f"tr[data-outbox='{outbox_id}'] button.replay")
    page.wait_for_selector("#replayed")
    assert page.inner_text("#dead-total") == "0"
    with init_db(db_url)() as s:
        row = s.get(OutboxItem, outbox_id)
        assert row is not None and row.dead_at is None and row.tries == 0


# --- tests -------------------------------------------------------------------------------


@pytest.mark.sip
@pytest.mark.slow
def test_sign_in_upload_start_watch_a_sip_call_play_it_and_read_the_report(
    server: str, browser: Browser, tmp_path: Path
) -> None:
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    _sign_in(page, server)
    campaign_url = _create_and_upload(page, tmp_path)

    live = context.new_page()
    live.goto(f"{server}/calls/live?lang=en")
    live.wait_for_function("document.getElementById('sse-status').textContent === '●'")
    page.goto(campaign_url)
    page.click("#start-campaign")
    page.wait_for_function("document.getElementById('campaign-state').textContent !== 'draft'")
    _shot(page, "03-campaign-started")
    _watch_the_call(live)
    _open_the_call(live, server)

    _open_the_report(live, server)
    live.goto(f"{server}/campaigns")
    _shot(live, "08-campaigns")
    live.goto(f"{server}/leads")
    assert "+8613800000203" in live.inner_text("#leads")  # an operator sees the number
    _shot(live, "09-leads")
    live.goto(f"{server}/dnc")
    _shot(live, "10-dnc")
    _replay_a_dead_letter(live, server, f"sqlite:///{tmp_path / 'node.db'}")
    context.close()


def test_the_chromium_is_debians(browser: Browser) -> None:
    assert os.path.realpath(CHROMIUM).startswith("/usr/")
    assert browser.version
