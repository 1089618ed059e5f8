"""The dialer: claim due leads, dial them through the trunk, run a CallSession, store it all.

It never claims more leads than it can dial: each round claims at most the smaller of its own
free concurrency and the telephony's `free_slots` (less the calls it has claimed but not yet
dialed). Should `dial()` still find every slot taken (`TelephonyBusyError`: another user of the
pool won the race), the claim is released (`store.release_claim`: no attempt counted, no
attempt row) and the run claims nothing more until one of its own calls ends.

Faults stay inside one call: a database that is locked or unreachable is retried with capped
backoff (a claim, a DNC check, an attempt's record), an event the bus cannot take is logged and
dropped (the attempt is stored first), and an attempt that fails unexpectedly is logged and
does not end the run or its other calls.

Several campaigns dial at once, each in its own run, sharing the node's call slots through one
`FairShare`: a slot that frees goes to the run that has waited longest, so a big campaign
never starves the others' callbacks. A shared `campaigns.pacing.Pacer` limits the calls
started per second (node and trunk) and the calls a trunk carries at once.

Pausing: before each claim the run reads its campaign's status (one primary-key read) and
claims nothing once it is not running; the claim checks again in its transaction, and each
claimed lead is checked once more immediately before its dial (its campaign still running,
its number on no do-not-call list): a claim the pause overtook is released, a number listed
since the claim is settled `dnc` without a call. Calls in progress finish; the run returns
when they have. Resuming is the node's (`app.node` starts a run for a running campaign).

Stopping (a node's shutdown): `stop()` ends claiming at once, and each run returns when its live
calls have ended, every outcome stored; `hang_up_all()` cuts the calls still live at the
deadline, whose outcomes are stored all the same. An outcome the machine decides mid-call (an
opt-out above all) is stored at once (``campaigns.outcomes``), not only at the end.

Leases (several nodes): a claim is handed to the node's ``campaigns.leases.LeaseKeeper`` in
the claiming thread, so its renewal never waits for the event loop; a claim the keeper finds
lost is not dialled, or its call is hung up (another node may dial the lead now), and its
attempt is not stored (``store.ClaimLost``). A lead this dialer still holds is never claimed
by it again meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar, runtime_checkable

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from bus.base import Bus
from callflow.session import OutcomeHook, SessionResult, TurnHook, TurnRecord
from core.vocab import Disposition, Grade, Outcome
from telephony.base import (
    CallHandle,
    DialRequest,
    Telephony,
    TelephonyBusyError,
    trunk_rejected,
)

from . import outcomes, store
from .compliance import CallingWindow, FrequencyCap, zone
from .leases import LeaseKeeper
from .pacing import UNPACED, Pacer
from .recordings import Recordings
from .retry import DEFAULT as DEFAULT_RETRY_POLICY
from .retry import RetryPolicy
from .store import AttemptRecord, ClaimedLead

log = logging.getLogger(__name__)

CALL_STARTED = "call/started"  # bus topic: a dial placed (bus.topics lists every topic)
CALL_TURN = "call/turn"  # bus topic: each turn of a live call (state, intent; no text)
CALL_ENDED = "call/ended"  # bus topic: every stored attempt
LEAD_QUALIFIED = "lead/qualified"  # bus topic: an attempt that qualified its lead


class CallRunner(Protocol):
    """What the dialer needs of a call session (callflow.session.CallSession is one)."""

    async def run(self) -> SessionResult: ...


@runtime_checkable
class ReportsOutcome(Protocol):
    """A call runner that tells its outcome mid-call (CallSession does): the dialer sets the
    hook before `run` and stores what it hears at once."""

    on_outcome: OutcomeHook | None


@runtime_checkable
class ReportsTurns(Protocol):
    """A call runner that tells each turn (CallSession does): the dialer publishes
    ``call/turn`` for live views."""

    on_turn: TurnHook | None


SessionFactory = Callable[[CallHandle, ClaimedLead], CallRunner]
T = TypeVar("T")
DB_RETRY_FIRST_S = 0.2  # a busy database: the first wait, doubling ...
DB_RETRY_MAX_S = 5.0  # ... up to this
PUBLISH_TIMEOUT_S = 5.0  # an event the bus has not taken by then is dropped


class _NotDialed(Exception):
    """The dialer stopped (or the campaign was paused) between a claim and its dial: the
    claim is released."""


class _Listed(Exception):
    """The number went on a do-not-call list between the claim and the dial."""


class FairShare:
    """The node's call slots, shared by the runs of every campaign: a run takes one slot per
    lead before claiming it and gives it back when the call is stored. Free slots are handed
    out first come, first served (``asyncio.Semaphore`` queues its waiters), so the run that
    has waited longest gets the next one."""

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError("a FairShare needs at least one slot")
        self._sem = asyncio.Semaphore(slots)

    async def take_now(self, n: int) -> int:
        """Take up to `n` slots without waiting (none while another run waits); how many."""
        taken = 0
        while taken < n and not self._sem.locked():
            await self._sem.acquire()  # not locked: returns at once, never waits
            taken += 1
        return taken

    async def take(self) -> None:
        """Wait for one slot, behind every run that waited before."""
        await self._sem.acquire()

    def give(self, n: int = 1) -> None:
        for _ in range(n):
            self._sem.release()


@dataclass(slots=True)
class AttemptSummary:
    lead_id: int
    attempt_id: int
    disposition: Disposition
    sip_code: int | None
    outcome: Outcome | None
    grade: Grade | None
    turns: list[TurnRecord]


@dataclass(slots=True)
class TrunkConfig:
    uri_template: str  # "sip:{phone}@host:port"
    username: str | None = None
    password: str | None = None
    ring_timeout_s: float = 30.0
    name: str = "default"  # the trunk's name: its pacing (calls per second, channels)

    def uri(self, phone: str) -> str:
        return self.uri_template.format(phone=phone)


class Dialer:
    def __init__(
        self,
        *,
        db: sessionmaker[Session],
        telephony: Telephony,
        make_session: SessionFactory,
        bus: Bus,
        trunk: TrunkConfig,
        window: CallingWindow,
        max_concurrent: int,
        max_attempts: int,
        node: str = "node-1",
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        share: FairShare | None = None,
        caps: FrequencyCap | None = None,
        retry: RetryPolicy = DEFAULT_RETRY_POLICY,
        lease: timedelta = store.LEASE,
        pacer: Pacer | None = None,
        recordings: Recordings | None = None,
        leases: LeaseKeeper | None = None,
    ) -> None:
        """`share`: the node's call slots, when several campaigns dial at once (see
        `FairShare`); None: this dialer's runs are limited by `max_concurrent` alone.
        `caps`: calls per number a day and a week (None: no cap); `retry`: delay and tries per
        disposition; `pacer`: calls per second and per trunk, shared by the node's dialers;
        `recordings`: where each call is recorded (None: calls are not recorded);
        `leases`: renews the leases of this dialer's claims (None: nothing renews them, so a
        call must end within `lease`)."""
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        self._db_factory = db
        self._tel = telephony
        self._make_session = make_session
        self._bus = bus
        self._trunk = trunk
        self._window = window
        self._max_concurrent = max_concurrent
        self._max_attempts = max_attempts
        self._node = node
        self._now = now
        self._share = share
        self._caps = caps
        self._retry = retry
        self._pacer = pacer or Pacer(UNPACED)
        self._recordings = recordings
        self._recording: dict[int, str] = {}  # lead id -> its live call's recording folder
        self._lease = lease  # how long a claim holds without renewal (`LeaseKeeper`)
        self._leases = leases
        self._held: set[int] = set()  # leads claimed by this dialer, their attempt not over
        self._lost: set[int] = set()  # held leads whose claim the keeper found lost
        self._refused: set[int] = set()  # leads whose dial the pool refused (busy)
        self._undialed: set[int] = set()  # leads claimed by a run, their dial() not returned
        self._live: dict[int, CallHandle] = {}  # lead id -> its call, dialed and not yet over
        self._telling: set[asyncio.Task[None]] = set()  # call/turn events being published
        self._early: dict[int, asyncio.Task[None]] = {}  # lead id -> its outcome's early write
        self._stopping = asyncio.Event()
        self._hanging_up = False

    def use_sessions(self, make_session: SessionFactory) -> None:
        """New calls get their sessions from `make_session` (an edited script reloaded by the
        node); calls in progress keep the sessions, and the script, they started with."""
        self._make_session = make_session

    def stop(self) -> None:
        """Claim no more leads; each run returns once its live calls are over and stored."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    @property
    def live_calls(self) -> int:
        return len(self._live)

    def _lease_lost(self, lead_id: int) -> None:
        """The lease keeper's report (on the event loop): `lead_id`'s claim is no longer
        ours. Its live call is hung up (another node may dial the lead now: never two calls
        at once); a lead not yet dialled is not dialled. An attempt being stored finds out
        by itself (`store.ClaimLost`)."""
        if lead_id not in self._held and lead_id not in self._undialed:
            return
        self._lost.add(lead_id)
        call = self._live.get(lead_id)
        if call is None:
            return
        log.error("a lease was lost before its call ended: hanging up", extra={"lead": lead_id})
        task = asyncio.create_task(self._hang_up(call), name=f"dialer.lost[lead={lead_id}]")
        self._telling.add(task)
        task.add_done_callback(self._telling.discard)

    async def hang_up_all(self) -> None:
        """Hang up every live call (and any dialed from now on): their sessions end, and their
        outcomes are stored as for any other call. Used at the shutdown deadline."""
        self._hanging_up = True
        self.stop()
        for call in list(self._live.values()):
            await self._hang_up(call)

    @staticmethod
    async def _hang_up(call: CallHandle) -> None:
        try:
            await call.hangup()
        except Exception as exc:
            log.warning("hanging up a call failed: %s", type(exc).__name__)

    def _claim_limit(self, running: int) -> int:
        """How many leads a round may claim with `running` calls of its own under way."""
        own = self._max_concurrent - running
        pool = self._tel.free_slots - len(self._undialed)
        return max(0, min(own, pool))

    async def run_until_idle(self, campaign_id: int) -> list[AttemptSummary]:
        """Dial every lead that is due now (up to max_concurrent at once); return when none is
        (or when the pool is full and none of this run's calls is left to free a slot), or,
        after `stop()`, when this run's live calls are over."""
        run = _Run(self, campaign_id)
        try:
            return await run.until_idle()
        finally:
            await run.close()

    async def _claim(self, campaign_id: int, limit: int) -> list[ClaimedLead]:
        """Claim up to `limit` leads of a running campaign; a busy database is retried until
        it answers or the dialer stops (then nothing is claimed)."""
        if limit <= 0:
            return []
        running = await self._db(
            "status", store.campaign_dialable, self._db_factory, campaign_id, give_up_on_stop=False
        )
        if not running:
            return []
        exclude = frozenset(self._held | self._undialed)  # never a second claim of one we hold
        return await self._db(
            "claim", self._claim_and_hold, campaign_id, limit, exclude, give_up_on_stop=[]
        )

    def _claim_and_hold(
        self, campaign_id: int, limit: int, exclude: frozenset[int]
    ) -> list[ClaimedLead]:
        """The claim, in a worker thread: its lease starts when the transaction does (not
        when the job was queued), and the lease keeper holds the claimed leads from the
        moment they are claimed, whatever the event loop is doing meanwhile."""
        claimed = store.claim_due_leads(
            self._db_factory,
            campaign_id,
            limit=limit,
            now=self._now(),
            node=self._node,
            window=self._window,
            max_attempts=self._max_attempts,
            caps=self._caps,
            lease=self._lease,
            exclude=exclude,
        )
        if self._leases is not None and claimed:
            self._leases.hold(claimed, self._lease_lost)
        return claimed

    async def _db(
        self,
        what: str,
        fn: Callable[..., T],
        *args: Any,
        give_up_on_stop: T | None = None,
        **kwargs: Any,
    ) -> T:
        """`fn(*args, **kwargs)` in a thread, retried with capped backoff while the database
        is locked or unreachable (``OperationalError``). With `give_up_on_stop` set, a retry
        after `stop()` returns it instead. Logs the error's type only: its text holds SQL
        parameters, a lead's phone among them."""
        delay = DB_RETRY_FIRST_S
        while True:
            try:
                return await asyncio.to_thread(fn, *args, **kwargs)
            except OperationalError as exc:
                if give_up_on_stop is not None and self.stopping:
                    return give_up_on_stop
                log.warning(
                    "database unavailable during %s (%s); retrying in %.1f s",
                    what,
                    type(exc.orig).__name__ if exc.orig is not None else "OperationalError",
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, DB_RETRY_MAX_S)

    async def attempt(self, lead: ClaimedLead) -> AttemptSummary | None:
        """Dial one claimed lead, run the call and store it. None when the telephony had no
        free slot after all (or the dialer stopped before the dial): the claim is released and
        the lead is due again; None too when the lease was lost meanwhile (nothing stored)."""
        self._held.add(lead.lead_id)  # the lease keeper holds it since its claim
        try:
            return await self._attempt(lead)
        finally:
            if self._leases is not None:
                self._leases.drop(lead.lead_id)
            self._held.discard(lead.lead_id)
            self._lost.discard(lead.lead_id)

    async def _attempt(self, lead: ClaimedLead) -> AttemptSummary | None:
        started = self._now()
        try:
            result, error = await self._call(lead)
        except (TelephonyBusyError, _NotDialed) as exc:
            if isinstance(exc, TelephonyBusyError):
                self._refused.add(lead.lead_id)
            await self._db("release", store.release_claim, self._db_factory, lead, node=self._node)
            log.info("claim released: %s", type(exc).__name__, extra={"lead": lead.lead_id})
            return None
        except _Listed:
            await self._db(
                "settle", store.settle_listed_claim, self._db_factory, lead, node=self._node
            )
            log.info(
                "not dialled: listed do-not-call since the claim", extra={"lead": lead.lead_id}
            )
            return None
        if result is not None and trunk_rejected(result.end):
            # the trunk refused our credentials, not the callee: no attempt, as for a busy pool
            self._refused.add(lead.lead_id)
            await self._db("release", store.release_claim, self._db_factory, lead, node=self._node)
            log.info("claim released: the trunk refused the call", extra={"lead": lead.lead_id})
            return None
        early = self._early.pop(lead.lead_id, None)
        if early is not None:
            await asyncio.gather(early, return_exceptions=True)  # it logs its own failure
        rec = self._record(lead, started, result, error)
        try:
            attempt_id = await self._db(
                "record",
                store.record_attempt,
                self._db_factory,
                rec,
                max_attempts=self._max_attempts,
                default_callback=self._default_callback(lead),
                retry=self._retry,
            )
        except store.ClaimLost:
            log.error("attempt not stored: its lease was lost", extra={"lead": lead.lead_id})
            return None
        await self._publish(rec, attempt_id)
        turns = result.turns if result else []
        return AttemptSummary(
            lead.lead_id, attempt_id, rec.disposition, rec.sip_code, rec.outcome, rec.grade, turns
        )

    async def _call(self, lead: ClaimedLead) -> tuple[SessionResult | None, str | None]:
        """(the session's result, None), or (None, what went wrong: a dial or call error).
        Lets TelephonyBusyError through: a dial the pool refused is no attempt; raises
        _NotDialed when the dialer stopped or the campaign was paused before the dial, and
        _Listed when the number went on a do-not-call list since the claim."""
        try:
            await self._pacer.wait_turn(self._trunk.name)
            why = await self._db("dial check", store.dial_check, self._db_factory, lead)
            if why == "dnc":
                raise _Listed
            if why is not None or self.stopping or lead.lead_id in self._lost:
                raise _NotDialed
            call = await self._tel.dial(self._request(lead))
        except (TelephonyBusyError, _NotDialed, _Listed):
            raise
        except (OSError, RuntimeError, ValueError) as exc:
            log.warning("dial failed: %s", type(exc).__name__, extra={"lead": lead.lead_id})
            return None, str(exc)
        finally:
            self._undialed.discard(lead.lead_id)
        self._live[lead.lead_id] = call
        await self._tell(
            CALL_STARTED,
            {
                "node": self._node,
                "campaign_id": lead.campaign_id,
                "lead_id": lead.lead_id,
                "attempt_no": lead.attempt_no,
                "at": self._now().timestamp(),
            },
        )
        try:
            if self._hanging_up or lead.lead_id in self._lost:  # the deadline, or lost: end it
                await self._hang_up(call)
            session = self._make_session(call, lead)
            if isinstance(session, ReportsOutcome):
                session.on_outcome = lambda outcome, grade, _slots: self._outcome_known(
                    lead, outcome, grade
                )
            if isinstance(session, ReportsTurns):
                session.on_turn = lambda node, turn: self._turn_told(lead, node, turn)
            return await session.run(), None
        except (OSError, RuntimeError, ValueError) as exc:
            log.warning("call failed: %s", type(exc).__name__, extra={"lead": lead.lead_id})
            return None, str(exc)
        finally:
            del self._live[lead.lead_id]

    def _outcome_known(self, lead: ClaimedLead, outcome: Outcome, grade: Grade | None) -> None:
        """The session's hook: store a settling outcome now, off the call's path."""
        if not outcomes.settles_early(outcome) or lead.lead_id in self._early:
            return
        self._early[lead.lead_id] = asyncio.create_task(
            self._store_outcome_now(lead, outcome, grade), name=f"outcome[lead={lead.lead_id}]"
        )

    async def _store_outcome_now(
        self, lead: ClaimedLead, outcome: Outcome, grade: Grade | None
    ) -> None:
        try:
            await self._db(
                "early outcome",
                outcomes.record_outcome_now,
                self._db_factory,
                lead,
                outcome,
                grade,
                node=self._node,
            )
        except Exception as exc:  # the end-of-call record writes it all the same
            log.warning(
                "storing an outcome early failed: %s",
                type(exc).__name__,
                extra={"lead": lead.lead_id},
            )

    def _request(self, lead: ClaimedLead) -> DialRequest:
        record_dir = None
        if self._recordings is not None:
            record_dir = str(self._recordings.folder_for(lead.lead_id, self._now()))
            self._recording[lead.lead_id] = record_dir
        return DialRequest(
            uri=self._trunk.uri(lead.phone),
            username=self._trunk.username or None,
            password=self._trunk.password or None,
            ring_timeout_s=self._trunk.ring_timeout_s,
            record_dir=record_dir,
        )

    async def _publish(self, rec: AttemptRecord, attempt_id: int) -> None:
        """Tell the bus (best effort: the attempt is already stored; an event the bus cannot
        take is logged and dropped, never failing the attempt)."""
        lead = rec.lead
        events: list[tuple[str, dict[str, Any]]] = [
            (
                CALL_ENDED,
                {
                    "node": self._node,
                    "campaign_id": lead.campaign_id,
                    "lead_id": lead.lead_id,
                    "attempt_id": attempt_id,
                    "disposition": rec.disposition,
                    "sip_code": rec.sip_code,
                    "outcome": rec.outcome,
                },
            )
        ]
        if rec.outcome is Outcome.QUALIFIED:
            grade = rec.grade or store.DEFAULT_GRADE
            payload = {"lead_id": lead.lead_id, "attempt_id": attempt_id, "grade": grade}
            events.append((LEAD_QUALIFIED, payload))
        for topic, payload in events:
            await self._tell(topic, payload)

    def _turn_told(self, lead: ClaimedLead, node: str, turn: TurnRecord) -> None:
        """The session's turn hook: publish ``call/turn`` off the call's path (ids, the state
        and the intent only: never the text)."""
        payload = {
            "node": self._node,
            "campaign_id": lead.campaign_id,
            "lead_id": lead.lead_id,
            "state": node,
            "speaker": turn.speaker,
            "intent": turn.intent,
            "confidence": turn.confidence,
        }
        task = asyncio.create_task(self._tell(CALL_TURN, payload), name="dialer.tell_turn")
        self._telling.add(task)
        task.add_done_callback(self._telling.discard)

    async def _tell(self, topic: str, payload: dict[str, Any]) -> None:
        """Publish one event, best effort: one the bus cannot take is logged and dropped."""
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT_S):
                await self._bus.publish(topic, payload)
        except Exception as exc:
            log.warning(
                "bus event %s not sent: %s",
                topic,
                type(exc).__name__,
                extra={"lead": payload.get("lead_id")},
            )

    def _record(
        self, lead: ClaimedLead, started: datetime, res: SessionResult | None, error: str | None
    ) -> AttemptRecord:
        end = res.end if res else None
        if end is not None and end.end_reason is not None:
            disposition = Disposition(end.end_reason)
        elif res is not None and res.answered:
            disposition = Disposition.COMPLETED
        else:
            disposition = Disposition.FAILED
        answered_at = (
            datetime.fromtimestamp(res.answered_at, UTC) if res and res.answered_at else None
        )
        return AttemptRecord(
            lead=lead,
            node=self._node,
            started_at=started,
            answered_at=answered_at,
            ended_at=self._now(),
            disposition=disposition,
            sip_code=end.sip_code if end else None,
            sip_reason=(end.reason if end else error) or error,
            hangup_by=end.hangup_by if end else None,
            outcome=res.outcome if res else None,
            grade=res.grade if res else None,
            final_state=res.final_state if res else None,
            slots=res.slots if res else {},
            turns=[asdict(t) for t in (res.turns if res else [])],
            recording_path=self._recording.pop(lead.lead_id, None),
            transfer_mode=res.transfer.mode if res and res.transfer else None,
            agent_answered=res.transfer.answered if res and res.transfer else None,
            scores=list(res.scores) if res else [],
        )

    def _default_callback(self, lead: ClaimedLead) -> datetime:
        """The window's first opening from tomorrow on, in the lead's timezone (a closed
        day or a holiday skipped)."""
        local = self._now().astimezone(zone(lead.timezone)) + timedelta(days=1)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        try:
            return self._window.next_open(midnight.astimezone(UTC), lead.timezone)
        except ValueError:  # a window that never opens: the opening hour tomorrow
            opening = self._window.start
            return local.replace(hour=opening.hour, minute=opening.minute).astimezone(UTC)


class _Run:
    """One `Dialer.run_until_idle`: its claims, its calls in progress, its share of the slots."""

    def __init__(self, dialer: Dialer, campaign_id: int) -> None:
        self.d = dialer
        self.campaign_id = campaign_id
        self.done: list[AttemptSummary] = []
        self.running: dict[asyncio.Task[AttemptSummary | None], int] = {}
        self.pool_busy = False  # dial() said busy: claim again only once a call of ours ends
        self.held = 0  # slots of the share taken and not yet tied to a call
        self.grant: asyncio.Task[None] | None = None  # waiting for a slot of the share
        self.stopped = asyncio.ensure_future(dialer._stopping.wait())

    async def until_idle(self) -> list[AttemptSummary]:
        trunk = self.d._trunk.name
        while True:
            wanted = 0 if self.pool_busy or self.d.stopping else self._limit()
            shared = await self._take_slots(wanted)
            limit = self.d._pacer.take(trunk, shared)  # the trunk's free channels
            try:
                claimed = await self.d._claim(self.campaign_id, limit)
            except BaseException:
                self._give(shared)
                self.d._pacer.give(trunk, limit)
                raise
            self._give(shared - len(claimed))
            self.d._pacer.give(trunk, limit - len(claimed))
            for lead in claimed:
                self._start(lead)
            trunk_full = limit < shared
            if (
                self.grant is None
                and len(claimed) == limit == shared < wanted
                and not trunk_full
                and not self.d.stopping
            ):
                share = self.d._share
                assert share is not None  # only a share limits below `wanted`
                self.grant = asyncio.ensure_future(share.take())  # more due: wait our turn
            if not self.running and (self.grant is None or self.d.stopping):
                return self.done
            waiting: set[asyncio.Future[Any]] = set(self.running)
            if self.grant is not None:
                waiting.add(self.grant)
            if not self.stopped.done():
                waiting.add(self.stopped)
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            self._collect()

    def _limit(self) -> int:
        return self.d._claim_limit(len(self.running))

    async def _take_slots(self, wanted: int) -> int:
        """How many leads may be claimed now: `wanted`, less what the share cannot give."""
        share = self.d._share
        if share is None:
            return wanted
        if self.grant is not None and self.grant.done():
            self.grant = None
            self.held += 1
        if self.held < wanted:
            self.held += await share.take_now(wanted - self.held)
        taken = min(self.held, wanted)
        self._give(self.held - taken)
        self.held = 0
        return taken

    def _give(self, n: int) -> None:
        if n > 0 and self.d._share is not None:
            self.d._share.give(n)

    def _start(self, lead: ClaimedLead) -> None:
        self.d._undialed.add(lead.lead_id)
        task = asyncio.create_task(self.d.attempt(lead), name=f"dial[lead={lead.lead_id}]")
        if self.d._share is not None:
            task.add_done_callback(lambda _t: self._give(1))
        trunk = self.d._trunk.name
        task.add_done_callback(lambda _t: self.d._pacer.give(trunk))
        self.running[task] = lead.lead_id

    def _collect(self) -> None:
        """Take in the calls that ended; one that failed unexpectedly is logged, not raised."""
        finished = [t for t in self.running if t.done()]
        busy = False
        for task in finished:
            lead_id = self.running.pop(task)
            if task.cancelled():
                continue
            exc = task.exception()
            if exc is not None:
                log.error("an attempt failed: %s", type(exc).__name__, extra={"lead": lead_id})
                continue
            result = task.result()
            if lead_id in self.d._refused:
                self.d._refused.discard(lead_id)
                busy = True
            elif result is not None:
                self.done.append(result)
        if finished:  # as a call of ours ends: claim again, unless one found the pool busy
            self.pool_busy = busy

    async def close(self) -> None:
        """Cancel what is left (the run itself was cancelled) and return every slot."""
        self.stopped.cancel()
        self.d._undialed.difference_update(self.running.values())
        for task in self.running:
            task.cancel()
        if self.d._leases is not None:  # an attempt cancelled before it ran drops nothing
            for lead_id in self.running.values():
                self.d._leases.drop(lead_id)
        if self.running:
            await asyncio.gather(*self.running, return_exceptions=True)
        if self.grant is not None:
            self.grant.cancel()
            await asyncio.gather(self.grant, return_exceptions=True)
            if not self.grant.cancelled():
                self._give(1)
        self._give(self.held)
