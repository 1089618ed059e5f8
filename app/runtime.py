"""One process's runtime: its engines, started in dependency order and closed in reverse.

`main.py run` (``app.node``) and `main.py demo` (``app.demo``) both run inside one::

    async with Runtime(cfg) as rt:
        dialer = await rt.dialer_for(campaign.script)
        await dialer.run_until_idle(campaign.id)

Start-up builds the database, the CRM adapter and the models first (a bad engine name fails
before any process is spawned), then starts the bus and then the media workers, which may
place calls at once. Shutdown runs in reverse: media workers, bus, prompt cache, ASR. Each
close is guarded: one that fails is logged and the others still run.

How the node dials (trunk, calling window, frequency caps, retries, pacing) is one
``DialPlan``, built from the config by ``dial_plan``; the demo overrides parts of it with
``dataclasses.replace``. Every dialer of a runtime shares one ``FairShare`` of
``max_concurrent`` call slots, so campaigns dialled at once take turns, and one ``Pacer``
(calls per second, calls per trunk); `stop_dialing` and `hang_up_all` reach every dialer (a
node's shutdown).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType

from sqlalchemy.orm import Session, sessionmaker

from app import scripts
from app.config import Config, ConfigError
from app.engines import (
    make_asr,
    make_crm,
    make_nlu,
    make_prompts,
    make_session_factory,
    make_telephony,
    make_tts,
)
from bus import make_bus
from bus.base import Bus
from bus.topics import presence_topic
from callflow.script import Script
from callflow.script_parse import load_script
from campaigns.compliance import CallingWindow, FrequencyCap
from campaigns.dialer import Dialer, FairShare, SessionFactory, TrunkConfig
from campaigns.leases import LeaseKeeper
from campaigns.pacing import Pacer, PacingConfig
from campaigns.recordings import Recordings
from campaigns.retry import DEFAULT as DEFAULT_RETRY
from campaigns.retry import RetryPolicy
from campaigns.store import LEASE
from crm_sync.base import CrmAdapter
from models import init_db
from nlu.base import INTENTS, IntentClassifier
from speech.asr.base import StreamingAsr
from speech.cache import PromptCache
from telephony.base import Telephony

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DialPlan:
    """How a node dials its campaigns: where, when, and how many at once."""

    trunk: TrunkConfig
    window: CallingWindow  # local hours in which a lead may be dialed
    max_concurrent: int  # calls in progress at once, over every campaign of the node
    max_attempts: int  # tries per lead before it is given up
    node: str  # stored on each attempt: which node placed it
    caps: FrequencyCap | None = None  # calls per number a day and a week; None: no cap
    retry: RetryPolicy = DEFAULT_RETRY  # delay and tries per disposition
    pacing: PacingConfig = PacingConfig()  # calls per second, calls per trunk
    lease: timedelta = LEASE  # a claim's life without renewal (the node renews its calls')


def dial_plan(cfg: Config) -> DialPlan:
    """The dial plan of ``telephony`` (trunk) and ``campaign`` (window, caps, retries,
    pacing) settings; a malformed one is a ConfigError naming the setting."""
    t, c = cfg.telephony, cfg.campaign
    try:
        window = CallingWindow.parse(c.calling_hours, c.calling_days, c.holidays)
        window.next_open(datetime.now(UTC), c.timezone)  # refuses a window that never opens
    except ValueError as exc:
        raise ConfigError(f"campaign.calling_hours/calling_days/holidays: {exc}") from None
    try:
        retry = RetryPolicy.parse(c.retry_policy)
        caps = FrequencyCap(c.max_calls_per_day, c.max_calls_per_week)
        pacing = PacingConfig(c.calls_per_second, c.trunk_calls_per_second, c.trunk_max_concurrent)
        Pacer(pacing)
        if c.lease_s < 3:
            raise ValueError(f"lease_s must be at least 3 seconds, got {c.lease_s}")
    except ValueError as exc:
        raise ConfigError(f"campaign: {exc}") from None
    return DialPlan(
        trunk=TrunkConfig(t.trunk_uri, t.username, t.password, t.ring_timeout_s, t.trunk_name),
        window=window,
        max_concurrent=c.max_concurrent_calls,
        max_attempts=c.max_attempts,
        node=default_node_id(),
        caps=caps if caps.active else None,
        retry=retry,
        pacing=pacing,
        lease=timedelta(seconds=c.lease_s),
    )


def default_node_id() -> str:
    """`<host>-<pid>-<random>`: unique per process, so two nodes on one host never share the
    ownership of their leases (`main.py run --node-id` names a node instead)."""
    host = socket.gethostname().replace("/", "_").replace("+", "_").replace("#", "_")
    return f"{host[:40]}-{os.getpid()}-{secrets.token_hex(3)}"


class Runtime:
    """The engines of one node, shared by every campaign it dials.

    `db_url` overrides ``database.url`` (the demo keeps its own database); `plan` overrides
    ``dial_plan(cfg)``. The engine attributes exist between ``__aenter__`` and ``__aexit__``.
    """

    db: sessionmaker[Session]
    crm: CrmAdapter | None  # None: qualified leads stay in the outbox
    nlu: IntentClassifier
    asr: StreamingAsr
    prompts: PromptCache  # the robot's voice, every fixed line rendered once
    bus: Bus
    telephony: Telephony

    def __init__(
        self, cfg: Config, *, db_url: str | None = None, plan: DialPlan | None = None
    ) -> None:
        self.cfg = cfg
        self.plan = plan or dial_plan(cfg)
        self._db_url = db_url or cfg.database.url
        self._stack = AsyncExitStack()
        self._scripts: dict[str, scripts.Loaded] = {}
        self._dialers: dict[str, Dialer] = {}
        self._share = FairShare(self.plan.max_concurrent)
        self._pacer = Pacer(self.plan.pacing)
        self._stopping = False
        rec = cfg.recording  # None: calls are not recorded
        self.recordings = (
            Recordings(rec.folder, retention_days=rec.retention_days) if rec.enabled else None
        )

    async def __aenter__(self) -> Runtime:
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.aclose()

    async def _start(self) -> None:
        cfg = self.cfg
        self.db = init_db(self._db_url, hold_lock=self._stack)  # SQLite: one node per file
        # renews the dialers' leases from its own thread (`run` by app.cluster on a node)
        self.leases = LeaseKeeper.beside(self.db, node=self.plan.node, lease=self.plan.lease)
        self._close_on_exit("lease keeper", self.leases.aclose)
        self.crm = make_crm(cfg)
        self.nlu = make_nlu(cfg)
        self.asr = make_asr(cfg)
        self._close_on_exit("asr", self.asr.aclose)
        self.prompts = make_prompts(cfg, make_tts(cfg))
        self._close_on_exit("prompts", self.prompts.aclose)
        self.bus = make_bus(
            cfg.bus.mqtt_url,
            prefix=cfg.bus.topic_prefix,
            will=(presence_topic(self.plan.node), {"node": self.plan.node, "online": False}),
            client_id=self.plan.node,
        )
        await self.bus.start()
        self._close_on_exit("bus", self.bus.close)
        self.telephony = make_telephony(cfg)
        await self.telephony.start()  # a pool that fails to start has closed itself
        self._close_on_exit("telephony", self.telephony.close)

    def _close_on_exit(self, name: str, close: Callable[[], Awaitable[None]]) -> None:
        """Close `name` on exit (in reverse order of registration), logging a failure."""

        async def guarded() -> None:
            try:
                await close()
            except Exception:
                log.exception("closing the %s failed", name)

        self._stack.push_async_callback(guarded)

    def script(self, path: str) -> Script:
        """The script at `path` as last loaded (and checked against the intents)."""
        if path not in self._scripts:
            data, digest = scripts.read(path)
            self._scripts[path] = scripts.Loaded(self._load(path), digest)
        return self._scripts[path].script

    def _load(self, path: str) -> Script:
        return load_script(
            path,
            known_intents=INTENTS,
            require_recording_notice=self.cfg.recording.enabled,
        )

    async def dialer_for(self, script_path: str) -> Dialer:
        """The dialer of every campaign using `script_path`: built, the script's fixed lines
        rendered and its version pinned the first time it is asked for; later, a script file
        whose content changed is reloaded for new calls (`refresh_script`)."""
        if script_path in self._dialers:
            await self.refresh_script(script_path)
            return self._dialers[script_path]
        script = self.script(script_path)
        await self.prompts.prefetch(script.lines())
        # off the event loop: a knowledge index takes seconds to build (leases, pauses wait)
        sessions = await asyncio.to_thread(self._sessions, script)
        if script_path in self._dialers:  # built by another campaign's loop meanwhile
            return self._dialers[script_path]
        plan = self.plan
        self._dialers[script_path] = Dialer(
            db=self.db,
            telephony=self.telephony,
            make_session=sessions,
            bus=self.bus,
            trunk=plan.trunk,
            window=plan.window,
            max_concurrent=plan.max_concurrent,
            max_attempts=plan.max_attempts,
            node=plan.node,
            share=self._share,
            caps=plan.caps,
            retry=plan.retry,
            lease=plan.lease,
            pacer=self._pacer,
            recordings=self.recordings,
            leases=self.leases,
        )
        if self._stopping:
            self._dialers[script_path].stop()
        loaded = self._scripts[script_path]
        data, _ = await asyncio.to_thread(scripts.read, script_path)
        if scripts.content_hash(data) == loaded.digest:
            await scripts.pin_version(self.db, script_path, loaded, data)
        return self._dialers[script_path]

    def _sessions(self, script: Script) -> SessionFactory:
        return make_session_factory(self.cfg, script, self.asr, self.nlu, self.prompts)

    async def refresh_script(self, path: str) -> None:
        """Reload `path` when its content changed: new calls use the new version (pinned),
        calls in progress keep theirs; an edit that does not load keeps the last good one."""
        loaded, dialer = self._scripts.get(path), self._dialers.get(path)
        if loaded is None or dialer is None:
            return
        data = await scripts.changed(path, loaded)
        if data is None:
            return
        digest = scripts.content_hash(data)
        try:
            script = self._load(path)
            sessions = await asyncio.to_thread(self._sessions, script)
        except Exception as exc:  # a broken edit: log once, keep dialing the last version
            loaded.failed = digest
            log.error("edited script does not load; still dialing the last version: %s", exc)
            return
        await self.prompts.prefetch(script.lines())
        dialer.use_sessions(sessions)
        self._scripts[path] = scripts.Loaded(script, digest)
        await scripts.pin_version(self.db, path, self._scripts[path], data)

    async def refresh_scripts(self) -> None:
        """`refresh_script` for every script this node dials (the node's status poll)."""
        for path in list(self._dialers):
            await self.refresh_script(path)

    def stop_dialing(self) -> None:
        """Every dialer claims no more leads; their runs end as their live calls do."""
        self._stopping = True
        for dialer in self._dialers.values():
            dialer.stop()

    async def hang_up_all(self) -> None:
        """Hang up every live call of every dialer (their outcomes are still stored)."""
        for dialer in self._dialers.values():
            await dialer.hang_up_all()

    @property
    def live_calls(self) -> int:
        return sum(d.live_calls for d in self._dialers.values())
