"""Issue 15 acceptance: three node processes on one PostgreSQL and one Mosquitto.

Real parts: `main.py run` processes, a PostgreSQL server and a Mosquitto broker on 127.0.0.1
started here and stopped afterwards, a local HTTP server as the CRM (it deduplicates by the
Idempotency-Key header, as a real CRM does). Node n1 dials over real SIP: its pool of pjsua2
media workers calls through Kamailio (playing the carrier: digest challenge, record-route) to
the simulated callee (`main.py callee`), whose every number answers and stays silent. n2 and n3
use fake telephony (the callee is the fake engine, silent; see tests/nodeenv.py). Recognizer,
TTS and NLU are the fakes on every node, so a lead's outcome is the same whichever node dials
it. Two campaigns: in "q" a silent callee is qualified (tests/scripts/qualify_on_silence.yaml);
in "r" it gives no response and is retried once (two attempts;
tests/scripts/no_response_on_silence.yaml, short lines: n1's SIP calls take real time, and it
must have a free slot within a second of the resume below).

First, while "r" alone is dialled, a pause sent with `main.py campaign pause` (database +
MQTT) stops new dials on every node within a second, and a resume starts them on every node
within a second (the nodes' status poll is 5 s: only MQTT is that fast). Then "q" starts too,
one node is SIGKILLed with calls in progress and the broker is restarted. Afterwards every lead
has exactly its attempts, no lead's attempts overlap in time (a lost call is recorded from its
claim to its lease's end), only the killed node lost leases (the others renewed theirs, under
load, with a 10 s lease), none is left undone, and every qualified lead has one outbox row
whose key the CRM received: exactly once at the CRM, though a row may be sent twice (a node
killed between the CRM's answer and its own write). And every attempt n1 made was a real SIP
call: completed with a 200, and answered by the simulated callee (one recording each).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from crm_sync.payload import idempotency_key
from models import CallAttempt, Campaign, Lead, LeadStatus, OutboxItem, OutboxKind, init_db
from simcallee.carrier import free_port, kamailio, kamailio_binary
from tests.nodeenv import ROOT, fake_node_env
from tests.pg import pg_bindir
from tests.pg import pg_server as pg_server
from tests.test_bus import MOSQUITTO
from tests.test_faults_node import Broker

pytestmark = pytest.mark.slow

Q_LEADS, R_LEADS, MAX_ATTEMPTS = 100, 200, 2
NODES = ("n1", "n2", "n3")
PREFIX = "mn"
SIP_NODE, SIP_SLOTS = "n1", 2  # the node dialling over real SIP (never the one killed)
NODE_SLOTS = 8  # concurrent calls of each fake-media node
TRUNK_USER, TRUNK_PASSWORD = "robot", "s3cret-pw"  # Kamailio's digest credentials for n1
SILENT = "silent_lead"  # the simulated callee's persona for every number: answers, says nothing


class Crm:
    """A CRM on 127.0.0.1 that deduplicates as a real one does: a POST whose Idempotency-Key
    it has seen is answered 200 and creates nothing (a node killed between the CRM's answer
    and its database write sends the row again, under the same key)."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}  # idempotency key -> the first body
        self.posts = 0
        crm = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                try:
                    body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                except ValueError:  # the node gave up mid-request (its timeout): no answer
                    return
                with lock:
                    crm.posts += 1
                    crm.records.setdefault(self.headers["Idempotency-Key"], body)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/leads"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class Events:
    """Every call and control message on the broker, with the time it arrived (paho thread)."""

    def __init__(self, port: int) -> None:
        self.got: list[tuple[float, str, dict[str, Any]]] = []
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2)
        self.client.on_connect = lambda c, *_: c.subscribe(
            [(f"{PREFIX}/call/#", 1), (f"{PREFIX}/control/#", 1), (f"{PREFIX}/node/#", 1)]
        )
        self.client.on_message = lambda _c, _u, m: self.got.append(
            (time.time(), m.topic[len(PREFIX) + 1 :], json.loads(m.payload))
        )
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def of(self, topic: str) -> list[tuple[float, dict[str, Any]]]:
        return [(at, p) for at, t, p in list(self.got) if t == topic]


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh database on the session's PostgreSQL; fails (never skips) without one."""
    assert pg_bindir() is not None, "PostgreSQL is not installed (scripts/setup.sh installs it)"
    import psycopg

    admin = request.getfixturevalue("pg_server")
    name = f"multinode{os.getpid()}"
    with psycopg.connect(admin.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield admin.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture
def carrier(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The simulated callee (`main.py callee`, one listening media worker) behind Kamailio:
    the trunk's host:port and the callee's recordings folder (one file per answered call).
    Its only persona, the default, answers every number and stays silent until the robot
    hangs up. It has twice the SIP node's slots: a slot is freed a moment after the hangup."""
    assert importlib.util.find_spec("pjsua2"), "pjsua2 is not installed (scripts/setup.sh)"
    assert kamailio_binary(), "kamailio is not installed (scripts/setup.sh installs it)"
    personas, port = tmp_path / "personas.yaml", free_port()
    personas.write_text(f"default: {{name: {SILENT}, ring_ms: 100, linger_s: 60}}\n")
    recordings = tmp_path / "callee-recordings"
    env = fake_node_env(
        tmp_path,
        inherit=True,
        CALLBOT__CALLEE__SIP_PORT=str(port),
        CALLBOT__CALLEE__PERSONAS=str(personas),
        CALLBOT__CALLEE__RECORDINGS_DIR=str(recordings),
        CALLBOT__TELEPHONY__ENGINE="pjsua2",
        CALLBOT__TELEPHONY__CALLS_PER_WORKER=str(2 * SIP_SLOTS),
    )
    log = tmp_path / "callee.log"
    with log.open("wb") as out:
        callee = subprocess.Popen(
            [sys.executable, "main.py", "callee"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its media worker is ended with it
        )
    try:
        listening = lambda: b"simulated callee listening" in log.read_bytes()  # noqa: E731
        wait_for(lambda: listening() or callee.poll() is not None, 90, "the simulated callee")
        assert callee.poll() is None, f"callee exited: {log.read_text(errors='replace')[-3000:]}"
        workdir = tmp_path / "kamailio"
        with kamailio(workdir, user=TRUNK_USER, password=TRUNK_PASSWORD, callee_port=port) as c:
            yield c.host, recordings
    finally:
        stop_group(callee, signal.SIGINT)


def stop_group(proc: subprocess.Popen[Any], sig: int) -> None:
    """`sig` to the process, then SIGKILL to what is left of its session (its media workers)
    after 20 s."""
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(sig)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def sip_env(env: dict[str, str], trunk: str) -> dict[str, str]:
    """`env` for the node dialling over real SIP through `trunk` (host:port)."""
    return env | {
        "CALLBOT__TELEPHONY__ENGINE": "pjsua2",
        "CALLBOT__TELEPHONY__TRUNK_URI": f"sip:{{phone}}@{trunk}",
        "CALLBOT__TELEPHONY__USERNAME": TRUNK_USER,
        "CALLBOT__TELEPHONY__PASSWORD": TRUNK_PASSWORD,
        "CALLBOT__TELEPHONY__RING_TIMEOUT_S": "10",
        "CALLBOT__TELEPHONY__PROCESSES": "1",
        "CALLBOT__TELEPHONY__CALLS_PER_WORKER": str(SIP_SLOTS),
        "CALLBOT__CAMPAIGN__MAX_CONCURRENT_CALLS": str(SIP_SLOTS),
        "PYTHONFAULTHANDLER": "1",  # a media worker that crashes leaves its stacks in the log
    }


def free_slot_at(events: Events, node: str, t: float) -> float:
    """When `node` next had a free call slot at or after `t`: `t` itself unless all its slots
    held calls then (a pause lets calls go on); else when the first of those calls ended."""
    slots = SIP_SLOTS if node == SIP_NODE else NODE_SLOTS
    started = sum(1 for _, p in events.of("call/started") if p["node"] == node and p["at"] <= t)
    ended = [at for at, p in events.of("call/ended") if p["node"] == node]
    if started - sum(1 for at in ended if at <= t) < slots:
        return t
    return min((at for at in ended if at > t), default=t)


def wait_for(cond: Callable[[], Any], within_s: float, what: str) -> None:
    deadline = time.monotonic() + within_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within_s:.0f} s waiting for {what}")
        time.sleep(0.2)


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "main.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done


def node_env(tmp_path: Path, db_url: str, mqtt_port: int, crm_url: str) -> dict[str, str]:
    return fake_node_env(
        tmp_path,
        inherit=True,
        DATABASE_URL=db_url,
        MQTT_URL=f"mqtt://127.0.0.1:{mqtt_port}/{PREFIX}",
        CALLBOT__CALLFLOW__NO_INPUT_TIMEOUT_S="0.3",
        CALLBOT__NLU__KNOWLEDGE_ENGINE="fake",  # no TF-IDF index: three at once load 2 cores
        CALLBOT__CAMPAIGN__MAX_CONCURRENT_CALLS=str(NODE_SLOTS),
        CALLBOT__CAMPAIGN__CALLS_PER_SECOND="0",
        CALLBOT__CAMPAIGN__MAX_ATTEMPTS=str(MAX_ATTEMPTS),
        CALLBOT__CAMPAIGN__RETRY_POLICY="completed=1s, worker_lost=1s",
        CALLBOT__CAMPAIGN__MAX_CALLS_PER_DAY="0",
        CALLBOT__CAMPAIGN__MAX_CALLS_PER_WEEK="0",
        CALLBOT__CAMPAIGN__LEASE_S="10",  # renewed every 3.3 s: room for a loaded machine
        CALLBOT__CAMPAIGN__STATUS_POLL_S="10",  # the node's poll is then 5 s: MQTT is faster
        CALLBOT__CAMPAIGN__SHUTDOWN_GRACE_S="5",
        CALLBOT__BUS__HEARTBEAT_S="0.5",
        CALLBOT__CRM__ENGINE="webhook",
        CALLBOT__CRM__WEBHOOK_URL=crm_url,
        CALLBOT__CRM__TOKEN="t0ken",
        CALLBOT__CRM__POLL_S="0.3",
    )


def add_campaigns(db_url: str) -> None:
    db = init_db(db_url)
    with db.begin() as s:
        q = Campaign(name="q", script="tests/scripts/qualify_on_silence.yaml", status="draft")
        r = Campaign(name="r", script="tests/scripts/no_response_on_silence.yaml", status="draft")
        s.add_all([q, r])
        s.flush()
        s.add_all(Lead(campaign_id=q.id, phone=f"1380000{i:04d}") for i in range(Q_LEADS))
        s.add_all(Lead(campaign_id=r.id, phone=f"1390000{i:04d}") for i in range(R_LEADS))


def test_three_nodes_one_killed_broker_restarted_nothing_lost_or_doubled(
    tmp_path: Path, pg_url: str, carrier: tuple[str, Path]
) -> None:
    assert MOSQUITTO is not None, "mosquitto is not installed (scripts/setup.sh installs it)"
    broker, crm = Broker(tmp_path), Crm()
    broker.start()
    add_campaigns(pg_url)
    env = {**os.environ, **node_env(tmp_path, pg_url, broker.port, crm.url)}
    events = Events(broker.port)
    logs = {n: tmp_path / f"{n}.log" for n in NODES}  # files: a full pipe would stall a node
    trunk, recordings = carrier
    envs = {n: sip_env(env, trunk) if n == SIP_NODE else env for n in NODES}
    nodes = {n: start(n, envs[n], logs[n]) for n in NODES}
    began = time.monotonic()
    try:
        run_campaign(env, pg_url, broker, events, nodes)
    finally:
        for name, proc in nodes.items():
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # media workers their node did not end
            print(f"--- {name} exit {proc.returncode}:\n{logs[name].read_text()[-3000:]}")
        events.client.loop_stop()
        crm.server.shutdown()
        broker.stop()
    print(f"campaign dialled and settled in {time.monotonic() - began:.0f} s")
    check_attempts(pg_url)
    check_crm(pg_url, crm)
    check_sip(pg_url, recordings)


def start(name: str, env: dict[str, str], log: Path) -> subprocess.Popen[str]:
    with log.open("w") as err:
        return subprocess.Popen(
            [sys.executable, "main.py", "run", "--node-id", name],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
            text=True,
            start_new_session=True,  # its media workers (if any) can be ended with it
        )


def live_nodes(env: dict[str, str]) -> set[str]:
    done = cli(env, "nodes", "--json", "--wait", "0.5")
    return {n["node"] for n in json.loads(done.stdout)}


@functools.cache
def database(db_url: str) -> sessionmaker[Session]:
    """One engine for the test's polls (each `init_db` would check the migrations again)."""
    return init_db(db_url)


def holds_leads(db_url: str, node: str) -> bool:
    with database(db_url)() as s:
        return s.scalar(select(Lead.id).where(Lead.claimed_by == node).limit(1)) is not None


def run_campaign(
    env: dict[str, str],
    db_url: str,
    broker: Broker,
    events: Events,
    nodes: dict[str, subprocess.Popen[str]],
) -> None:
    exited = lambda: [n for n, p in nodes.items() if p.poll() is not None]  # noqa: E731
    wait_for(lambda: live_nodes(env) == set(NODES) or exited(), 90, "three live nodes")
    assert not exited(), f"nodes {exited()} exited at start"
    cli(env, "campaign", "start", "r")  # the longer campaign: still running at the pause
    started = lambda: events.of("call/started")  # noqa: E731
    wait_for(lambda: {p["node"] for _, p in started()} == set(NODES), 90, "every node dialling")
    check_pause_and_resume(env, events)
    cli(env, "campaign", "start", "q")
    wait_for(lambda: len(started()) >= 150, 120, "150 calls placed")
    wait_for(lambda: holds_leads(db_url, "n3"), 30, "n3 with calls in progress")
    nodes["n3"].send_signal(signal.SIGKILL)
    broker.stop()
    time.sleep(1.0)
    broker.start()
    wait_for(lambda: settled(db_url), 240, "every lead settled and every qualified one sent")
    assert live_nodes(env) == {"n1", "n2"}  # n3's presence is stale, then its last will
    for n in ("n1", "n2"):
        nodes[n].send_signal(signal.SIGTERM)
        assert nodes[n].wait(60) == 0, f"{n} did not stop cleanly"


def check_pause_and_resume(env: dict[str, str], events: Events) -> None:
    """A pause (database + MQTT): no call starts on any node a second after the control
    message; a resume (MQTT; the nodes' own poll is 5 s): calls start within a second on
    every node, counted from its first free slot (n1's two real-SIP calls may still be up)."""
    cli(env, "campaign", "pause", "r")
    paused_at = max(at for at, p in events.of("control/campaign") if p["action"] == "pause")
    time.sleep(2.5)
    starts = [p for _, p in events.of("call/started")]
    late = [p for p in starts if p["at"] > paused_at + 1.0]
    assert late == [], f"{len(late)} calls started more than 1 s after the pause"
    for n in NODES:  # measured: the last call each node started, relative to the pause
        last = max((p["at"] for p in starts if p["node"] == n), default=float("nan"))
        print(f"pause: {n}'s last call started {last - paused_at:+.2f} s after it")
    cli(env, "campaign", "resume", "r")
    resumed_at = max(at for at, p in events.of("control/campaign") if p["action"] == "resume")
    after = lambda: [p for _, p in events.of("call/started") if p["at"] > resumed_at]  # noqa: E731
    wait_for(lambda: {p["node"] for p in after()} == set(NODES), 15, "a call on every node")
    for n in NODES:
        first = min(p["at"] for p in after() if p["node"] == n)
        ready = free_slot_at(events, n, resumed_at)
        print(f"resume: {n}'s first call {first - resumed_at:.2f} s after it", end="")
        print(f" (a slot was free {ready - resumed_at:.2f} s after it)")
        assert first - ready < 1.0, f"{n}'s first call came {first - ready:.2f} s late"


def settled(db_url: str) -> bool:
    db = database(db_url)
    open_states = [LeadStatus.NEW, LeadStatus.RETRY, LeadStatus.CALLING, LeadStatus.CALLBACK]
    with db() as s:
        busy = s.scalar(
            select(Lead.id).where(Lead.status.in_(open_states) | Lead.claimed_by.is_not(None))
        )
        unsent = s.scalar(select(OutboxItem.id).where(OutboxItem.sent_at.is_(None)))
    return busy is None and unsent is None


def check_attempts(db_url: str) -> None:
    db = init_db(db_url)
    with db() as s:
        camp = {c.name: c.id for c in s.scalars(select(Campaign))}
        leads = list(s.scalars(select(Lead)))
        rows: dict[int, list[CallAttempt]] = defaultdict(list)
        for a in s.scalars(select(CallAttempt).order_by(CallAttempt.started_at)):
            rows[a.lead_id].append(a)
    assert len(leads) == Q_LEADS + R_LEADS
    lost = [a for atts in rows.values() for a in atts if a.disposition == "worker_lost"]
    wrong = [
        (a.lead_id, a.node, f"{a.started_at:%T.%f}", f"{a.ended_at:%T.%f}")
        for a in lost
        if a.node != "n3"
    ]
    assert lost and not wrong, wrong  # the killed node's calls, and only its
    for lead in leads:
        atts = rows[lead.id]
        assert lead.attempts == len(atts), lead.id  # every attempt counted is recorded
        for before, after in zip(atts, atts[1:], strict=False):
            assert before.ended_at is not None, lead.id
            assert after.started_at >= before.ended_at, f"lead {lead.id}: two calls at once"
        if lead.campaign_id == camp["r"]:
            assert (lead.status, len(atts)) == (LeadStatus.DONE, MAX_ATTEMPTS), lead.id
        else:
            assert lead.status == LeadStatus.QUALIFIED, lead.id
            assert sum(a.disposition != "worker_lost" for a in atts) <= 1, lead.id


def check_crm(db_url: str, crm: Crm) -> None:
    """Every qualified lead reached the CRM exactly once: one outbox row (one idempotency
    key) per qualified lead, each key received, nothing else recorded."""
    db = init_db(db_url)
    with db() as s:
        qualified = set(s.scalars(select(Lead.id).where(Lead.status == LeadStatus.QUALIFIED)))
        keys = {
            idempotency_key(row.id): row.lead_id
            for row in s.scalars(
                select(OutboxItem).where(OutboxItem.kind == OutboxKind.LEAD_QUALIFIED)
            )
        }
    assert len(qualified) == Q_LEADS
    per_lead = Counter(keys.values())
    assert set(per_lead) == qualified and set(per_lead.values()) == {1}, "one row per lead"
    assert set(crm.records) == set(keys), "every row's key received, no other"
    assert {k: b["lead_id"] for k, b in crm.records.items()} == keys
    print(f"CRM: {len(crm.records)} records, {crm.posts - len(crm.records)} redeliveries")


def check_sip(db_url: str, recordings: Path) -> None:
    """Some leads were dialled over real SIP: the SIP node made attempts, each completed with
    a 200, and the simulated callee answered exactly that many calls (a recording each)."""
    with database(db_url)() as s:
        atts = list(s.scalars(select(CallAttempt).where(CallAttempt.node == SIP_NODE)))
    assert atts, f"{SIP_NODE} made no attempt"
    ends = Counter((a.disposition, a.sip_code) for a in atts)
    assert set(ends) == {("completed", 200)}, ends
    answered = sorted(recordings.glob(f"{SILENT}-*.wav"))
    assert len(answered) == len(atts), (len(answered), len(atts))
    leads = len({a.lead_id for a in atts})
    print(f"SIP: {len(atts)} attempts ({leads} leads) by {SIP_NODE}, each answered by the callee")
