"""Issue 9, items 2, 3 and 6: one fault must not kill the node, an outcome is stored as soon as
it is known, a broken configuration stops the node at start, campaigns are interleaved.

The node runs from config over the fake engines (as in tests/test_node.py) on a real SQLite
file; the bus fault uses a real Mosquitto broker on 127.0.0.1, stopped and restarted on the
same port; the lock is a second connection holding ``BEGIN EXCLUSIVE`` on the database file.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from app.config import Config, load_config
from app.node import run_node
from callflow.script import Script
from callflow.script_parse import load_script
from models import CallAttempt, Campaign, DncEntry, Lead, LeadStatus, init_db
from nlu.base import INTENTS
from tests.nodeenv import start_node
from tests.test_bus import MOSQUITTO, free_port
from tests.test_callflow_session import SILENCE, SPEECH
from tests.test_callflow_session import Rig as SessionRig
from tests.test_callflow_session import wait_for as wait_for_cond
from tests.test_node import node_env, wait_until

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = "callflow/scripts/saas_demo.yaml"


def config(tmp_path: Path, **extra: str) -> Config:
    env = node_env(tmp_path, "http://127.0.0.1:9/unused") | {"CALLBOT__CRM__ENGINE": "none"}
    return load_config(ROOT / "config.yaml", env=env | extra)


def add_campaign(cfg: Config, name: str, phones: list[str], script: str = SCRIPT) -> int:
    db = init_db(cfg.database.url)
    with db.begin() as s:
        camp = Campaign(name=name, script=script)
        s.add(camp)
        s.flush()
        s.add_all([Lead(campaign_id=camp.id, phone=p) for p in phones])
        return camp.id


def attempts(cfg: Config) -> list[CallAttempt]:
    db = init_db(cfg.database.url)
    with db() as s:
        return list(s.scalars(select(CallAttempt).order_by(CallAttempt.id)).all())


def leads(cfg: Config) -> list[Lead]:
    db = init_db(cfg.database.url)
    with db() as s:
        return list(s.scalars(select(Lead).order_by(Lead.id)).all())


async def stop(node: asyncio.Task[None]) -> None:
    node.cancel()
    await asyncio.gather(node, return_exceptions=True)


# --- a broker restart -------------------------------------------------------------------------


class Broker:
    """Mosquitto on 127.0.0.1 that a test can stop and start again on the same port."""

    def __init__(self, tmp_path: Path) -> None:
        self.port = free_port()
        self.conf = tmp_path / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert MOSQUITTO is not None
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stderr=subprocess.DEVNULL)
        import socket

        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("mosquitto did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(5)
            self.proc = None


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    if MOSQUITTO is None:
        pytest.skip("mosquitto is not installed (scripts/setup.sh installs it)")
    b = Broker(tmp_path)
    b.start()
    try:
        yield b
    finally:
        b.stop()


async def test_a_broker_restart_leaves_the_node_running_and_every_call_recorded(
    tmp_path: Path, broker: Broker
) -> None:
    cfg = config(
        tmp_path,
        MQTT_URL=f"mqtt://127.0.0.1:{broker.port}/t{time.monotonic_ns()}",
        CALLBOT__CALLFLOW__NO_INPUT_TIMEOUT_S="0.4",
    )
    phones = [f"1380000{i:04d}" for i in range(9)]
    add_campaign(cfg, "spring", phones)
    node = asyncio.create_task(run_node(cfg, poll_s=0.05))
    try:
        await wait_until(lambda: len(attempts(cfg)) >= 1, 20)
        broker.stop()  # calls are in flight while the broker is gone
        await asyncio.sleep(1.5)
        assert not node.done(), node.exception() if node.done() else ""
        broker.start()
        await wait_until(lambda: len(attempts(cfg)) == len(phones) or node.done(), 30)
        assert not node.done(), node.exception() if node.done() else ""
        assert all(lead.status != LeadStatus.CALLING for lead in leads(cfg))
    finally:
        await stop(node)


# --- a database lock held for 10 s --------------------------------------------------------------


def hold_exclusive_lock(path: str, seconds: float, locked: threading.Event) -> None:
    con = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        con.execute("BEGIN EXCLUSIVE")
        locked.set()
        time.sleep(seconds)
        con.execute("COMMIT")
    finally:
        con.close()


async def test_a_database_locked_for_10_s_leaves_the_node_running_and_every_call_recorded(
    tmp_path: Path,
) -> None:
    cfg = config(tmp_path, CALLBOT__CALLFLOW__NO_INPUT_TIMEOUT_S="0.3")
    phones = [f"1390000{i:04d}" for i in range(8)]
    add_campaign(cfg, "spring", phones)
    node = asyncio.create_task(run_node(cfg, poll_s=0.05))
    try:
        await wait_until(lambda: len(attempts(cfg)) >= 1, 20)
        locked = threading.Event()
        path = cfg.database.url.removeprefix("sqlite:///")
        holder = threading.Thread(target=hold_exclusive_lock, args=(path, 10.0, locked))
        holder.start()
        assert await asyncio.to_thread(locked.wait, 5)
        while holder.is_alive():
            await asyncio.sleep(0.2)
            assert not node.done(), node.exception()
        await wait_until(lambda: len(attempts(cfg)) == len(phones) or node.done(), 40)
        assert not node.done(), node.exception() if node.done() else ""
        assert all(lead.status != LeadStatus.CALLING for lead in leads(cfg))
        assert all(lead.attempts == 1 for lead in leads(cfg))
    finally:
        await stop(node)


# --- a campaign whose script does not load -------------------------------------------------------


async def test_a_campaign_with_a_broken_script_is_skipped_and_the_others_dialled(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = config(tmp_path)
    broken = add_campaign(cfg, "broken", ["13700000001"], script="callflow/scripts/nope.yaml")
    good = add_campaign(cfg, "good", ["13700000002", "13700000003"])
    caplog.set_level(logging.WARNING)
    node = asyncio.create_task(run_node(cfg, poll_s=0.05))
    try:
        await wait_until(lambda: len(attempts(cfg)) == 2 or node.done(), 20)
        await asyncio.sleep(0.5)  # several more polls: the broken script is reported once
        assert not node.done(), node.exception() if node.done() else ""
    finally:
        await stop(node)
    assert {a.campaign_id for a in attempts(cfg)} == {good}
    (untouched,) = [lead for lead in leads(cfg) if lead.campaign_id == broken]
    assert (untouched.status, untouched.attempts) == (LeadStatus.NEW, 0)
    skipped = [r for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 1, [r.getMessage() for r in caplog.records]
    assert "13700000001" not in caplog.text


# --- campaigns interleaved ------------------------------------------------------------------------


async def test_two_campaigns_are_interleaved(tmp_path: Path) -> None:
    cfg = config(tmp_path, CALLBOT__CAMPAIGN__MAX_CONCURRENT_CALLS="1")
    big = add_campaign(cfg, "big", [f"1360000{i:04d}" for i in range(6)])
    small = add_campaign(cfg, "small", ["13500000001", "13500000002"])
    node = asyncio.create_task(run_node(cfg, poll_s=0.05))
    try:
        await wait_until(lambda: len(attempts(cfg)) == 8 or node.done(), 30)
    finally:
        await stop(node)
    order = [a.campaign_id for a in attempts(cfg)]
    assert sorted(order) == sorted([big] * 6 + [small] * 2)
    assert small in order[:3], order  # not after every lead of the big campaign


# --- an opt-out is stored before the call ends ------------------------------------------------


@pytest.fixture
def script() -> Script:
    return load_script(SCRIPT, known_intents=INTENTS)


async def test_an_opt_out_is_on_the_dnc_list_before_the_call_ends(
    tmp_path: Path, script: Script
) -> None:
    rig = SessionRig(tmp_path, script, auto_play=False)
    lead_id = rig.add_lead("13800000088")
    run = asyncio.create_task(rig.dialer.run_until_idle(rig.campaign_id))
    try:
        await wait_for_cond(lambda: bool(rig.tel.calls) and rig.tel.calls[0].queued_ms > 0)
        call = rig.tel.calls[0]
        call.advance_all()  # the greeting is heard to its end
        rig.asr.push_script("别再打了")
        call.push_audio(SPEECH + SILENCE)
        await wait_for_cond(lambda: call.queued_ms > 0)  # the goodbye line is playing

        def on_dnc_list() -> bool:
            with rig.db() as s:
                return s.get(DncEntry, "13800000088") is not None

        await wait_for_cond(on_dnc_list)
        assert call.ended is None  # the goodbye is still playing: the call is live
        with rig.db() as s:
            lead = s.get(Lead, lead_id)
            assert lead is not None and lead.status == LeadStatus.DNC
        call.advance_all()
        (res,) = await asyncio.wait_for(run, 10)
    finally:
        run.cancel()
    assert res.outcome == "dnc"
    with rig.db() as s:
        assert s.query(DncEntry).count() == 1
        lead = s.get(Lead, lead_id)
        assert lead is not None and (lead.status, lead.attempts) == (LeadStatus.DNC, 1)
        assert lead.claimed_by is None
        assert s.query(CallAttempt).one().outcome == "dnc"


# --- a broken configuration stops the node at start ------------------------------------------


def test_a_bad_trunk_uri_stops_the_node_at_start_with_exit_2_and_no_lead_claimed(
    tmp_path: Path,
) -> None:
    env = node_env(tmp_path, "http://127.0.0.1:9/unused") | {
        "CALLBOT__CRM__ENGINE": "none",
        "CALLBOT__TELEPHONY__TRUNK_URI": "sip:10.0.0.5:5060",  # no {phone}: one number for all
    }
    cfg = load_config(ROOT / "config.yaml", env=env)
    add_campaign(cfg, "spring", ["13800000001", "13800000002"])
    proc = start_node(env)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("the node kept running with a trunk_uri that has no {phone}")
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "telephony.trunk_uri" in lines[0], err
    assert [(lead.status, lead.attempts) for lead in leads(cfg)] == [(LeadStatus.NEW, 0)] * 2


TRUNK = "CALLBOT__TELEPHONY__TRUNK_URI"


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({TRUNK: "sip:10.0.0.5:5060"}, "{phone}"),
        ({TRUNK: "sip:{phone}@"}, "host"),
        ({TRUNK: "http://{phone}@10.0.0.5"}, "sip:"),
        ({TRUNK: "sip:{phone}@10.0.0.5:99999"}, "port"),
        ({TRUNK: "sip:{phone}@10.0.0.5:{port}"}, "trunk_uri"),
        ({"CALLBOT__TELEPHONY__PASSWORD": "secret"}, "telephony.username"),
        ({"CALLBOT__CALLFLOW__SCRIPT": "callflow/scripts/nope.yaml"}, "callflow.script"),
        ({"DATABASE_URL": "sqlite:///{tmp}/a-file/callbot.db"}, "database"),
        ({"CALLBOT__CRM__ENGINE": "webhook", "CALLBOT__CRM__WEBHOOK_URL": ""}, "webhook_url"),
        ({"MQTT_URL": "http://127.0.0.1:1883"}, "mqtt"),
    ],
)
def test_preflight_names_the_broken_setting(
    tmp_path: Path, settings: dict[str, str], named: str
) -> None:
    from app.preflight import PreflightError, preflight

    (tmp_path / "a-file").write_text("not a folder")
    cfg = config(tmp_path, **{k: v.replace("{tmp}", str(tmp_path)) for k, v in settings.items()})
    with pytest.raises(PreflightError, match=re.escape(named)) as e:
        preflight(cfg)
    assert "\n" not in str(e.value) and "secret" not in str(e.value)


def test_preflight_asks_for_the_crm_token_and_passes_a_good_config(tmp_path: Path) -> None:
    from app.preflight import PreflightError, preflight

    hook = {"CALLBOT__CRM__ENGINE": "webhook", "CALLBOT__CRM__TOKEN": ""}
    with pytest.raises(PreflightError, match="crm.token"):
        preflight(config(tmp_path, **hook))
    preflight(config(tmp_path, **(hook | {"CALLBOT__CRM__TOKEN": "t"})))
    preflight(config(tmp_path, CALLBOT__TELEPHONY__TRUNK_URI="sips:{phone}@[2001:db8::1]:5061"))


def test_preflight_warns_when_a_full_worker_could_not_bridge_a_transfer(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from app.preflight import preflight

    bridging = {
        "CALLBOT__TELEPHONY__ENGINE": "pjsua2",
        "CALLBOT__CALLFLOW__TRANSFER_TO": "agent=sip:8001@10.0.0.1",
        "CALLBOT__CALLFLOW__TRANSFER_MODE": "auto",
    }
    with caplog.at_level(logging.WARNING, logger="app.preflight"):
        preflight(config(tmp_path, **bridging))  # a warning only: the node still starts
    assert "telephony.calls_per_worker to 3" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="app.preflight"):
        preflight(config(tmp_path, **bridging, CALLBOT__TELEPHONY__CALLS_PER_WORKER="3"))
        preflight(config(tmp_path, **bridging | {"CALLBOT__CALLFLOW__TRANSFER_MODE": "refer"}))
    assert caplog.text == ""
