"""A node's leases, renewed from a thread of their own.

A claimed lead is leased to its node for ``campaign.lease_s``; a node that dies stops renewing
and its leads are settled as lost attempts when the lease has run out (``store``). So a node
that is alive must never miss a renewal, whatever its event loop is doing: a campaign's first
call may build a knowledge index, a lazy import may take seconds on a loaded machine, and a
renewal queued behind call work in the default thread pool waits its turn. Measured on the
three-node test (2 loaded cores), such stalls of the event loop reached 24 s while another
thread of the same process never waited more than 1.6 s; with renewals scheduled on the loop,
a 10 s lease expired under a node that was alive and mid-call, and another node settled the
lead (due again at once) while its first call went on.

`LeaseKeeper` therefore renews from a daemon thread, on a database connection of its own (its
own engine: never queued behind the node's other database work), every third of the lease,
computing each new expiry just before its UPDATE. The dialer tells it which claims it holds
(`hold`, from the claiming thread as the claim commits, which renews them at once; `drop`
when the attempt is stored or released). A claim found lost (settled by another node after
all, or no longer this claim: ``store.renew_leases`` compares the claim's `claimed_at`) is
handed back to the event loop (`on_lost`), where the dialer hangs up its call.

A thread that renews forever would hide a wedged process, so the thread renews only while the
event loop has shown life (`run` beats every second) within `wedged_after_s` (default: the
larger of 5 minutes and three leases); past that it stops and the leads go to other nodes.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from models import make_engine

from . import store

log = logging.getLogger(__name__)

BEAT_S = 1.0  # how often `run` tells the thread that the event loop is alive
WEDGED_MIN_S = 300.0  # the least `wedged_after_s`


@dataclass(frozen=True, slots=True)
class _Held:
    token: datetime | None  # the claim's `claimed_at` (None: any claim of this node)
    on_lost: Callable[[int], None]  # called on the event loop with the lead id


def _utcnow() -> datetime:
    return datetime.now(UTC)


class LeaseKeeper:
    """Renews one node's leases from its own thread (see the module's docstring)."""

    def __init__(
        self,
        db: sessionmaker[Session],
        *,
        node: str,
        lease: timedelta,
        now: Callable[[], datetime] = _utcnow,
        wedged_after_s: float | None = None,
    ) -> None:
        """`db`: a session factory for the keeper alone (its own engine and pool)."""
        if lease.total_seconds() <= 0:
            raise ValueError("a lease must be longer than zero")
        self._db = db
        self._node = node
        self.lease = lease
        self.every_s = lease.total_seconds() / 3
        self._now = now
        self._wedged_after_s = wedged_after_s or max(WEDGED_MIN_S, 3 * lease.total_seconds())
        self._held: dict[int, _Held] = {}
        self._lock = threading.Lock()  # guards _held
        self._loop: asyncio.AbstractEventLoop | None = None
        self._alive_at = time.monotonic()  # the event loop's last beat
        self._stop = threading.Event()
        self._wake = threading.Event()  # new claims: renew now, not at the next tick
        self._thread: threading.Thread | None = None
        self._own_engine: Engine | None = None

    @classmethod
    def beside(
        cls, db: sessionmaker[Session], *, node: str, lease: timedelta, **kwargs: Any
    ) -> LeaseKeeper:
        """A keeper for a node whose database is `db`: with its own engine on a server
        database, so a renewal never waits for a connection behind the node's other work
        (`aclose` disposes of it); on SQLite with `db` itself (one node per file, and an
        in-memory database exists only in its own engine)."""
        engine = db.kw["bind"]
        if engine.dialect.name == "sqlite":
            return cls(db, node=node, lease=lease, **kwargs)
        own = make_engine(engine.url.render_as_string(hide_password=False))
        keeper = cls(sessionmaker(own, expire_on_commit=False), node=node, lease=lease, **kwargs)
        keeper._own_engine = own
        return keeper

    async def aclose(self) -> None:
        """Dispose of the keeper's own engine (the thread has stopped with `run`)."""
        if self._own_engine is not None:
            await asyncio.to_thread(self._own_engine.dispose)

    def hold(self, leads: Iterable[store.ClaimedLead], on_lost: Callable[[int], None]) -> None:
        """Renew `leads`' leases from now on, the first time at once (their lease then counts
        from their claim's commit, however long its transaction took); `on_lost(lead_id)` runs
        on the event loop if a claim is found lost."""
        with self._lock:
            for lead in leads:
                self._held[lead.lead_id] = _Held(lead.claimed_at, on_lost)
        self._wake.set()

    def drop(self, lead_id: int) -> None:
        """Stop renewing `lead_id` (its attempt is stored, or its claim released)."""
        with self._lock:
            self._held.pop(lead_id, None)

    @property
    def held(self) -> int:
        with self._lock:
            return len(self._held)

    def renew_now(self) -> set[int]:
        """One renewal of every held claim, in the calling thread: the ids found lost, each
        dropped and reported to its `on_lost`."""
        with self._lock:
            held = dict(self._held)
        if not held:
            return set()
        claims = {lead_id: h.token for lead_id, h in held.items()}
        lost = store.renew_leases(self._db, claims, node=self._node, until=self._now() + self.lease)
        for lead_id in lost:
            with self._lock:
                mine = self._held.get(lead_id) is held[lead_id]
                if mine:
                    del self._held[lead_id]
            if mine:
                self._report(held[lead_id].on_lost, lead_id)
        return lost

    def _report(self, on_lost: Callable[[int], None], lead_id: int) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            on_lost(lead_id)  # no loop (a test calling renew_now directly): call it here
            return
        try:
            loop.call_soon_threadsafe(on_lost, lead_id)
        except RuntimeError:  # the loop closed meanwhile: nobody is left to tell
            pass

    def _renew_forever(self) -> None:
        while True:
            self._wake.wait(self.every_s)
            self._wake.clear()
            if self._stop.is_set():
                return
            silent_s = time.monotonic() - self._alive_at
            if silent_s > self._wedged_after_s:
                log.error(
                    "event loop silent for %.0f s: leases no longer renewed, left to other nodes",
                    silent_s,
                )
                continue
            try:
                self.renew_now()
            except SQLAlchemyError as exc:  # the database away: the lease has two more tries
                log.warning("lease renewal failed (%s)", type(exc).__name__)
            except Exception:  # never let the thread die: the leases would all be lost
                log.exception("lease renewal failed unexpectedly")

    async def run(self, stop: asyncio.Event) -> None:
        """Renew in the keeper's thread until `stop` is set (set only once every call of the
        node is over and stored), beating every `BEAT_S` to show the event loop alive."""
        self._loop = asyncio.get_running_loop()
        self._alive_at = time.monotonic()
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._renew_forever, name=f"leases[{self._node}]", daemon=True
        )
        self._thread.start()
        try:
            while not stop.is_set():
                self._alive_at = time.monotonic()
                try:
                    await asyncio.wait_for(stop.wait(), BEAT_S)
                except TimeoutError:
                    pass
        finally:
            self._stop.set()
            self._wake.set()
            await asyncio.to_thread(self._thread.join, self.every_s + 30)
