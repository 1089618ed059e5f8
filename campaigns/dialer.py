"""The dialer: claim due leads, dial them through the trunk, run a CallSession, store it all.

It never claims more leads than it can dial: each round claims at most the smaller of its own
free concurrency and the telephony's `free_slots` (less the calls it has claimed but not yet
dialed). Should `dial()` still find every slot taken (`TelephonyBusyError`: another user of the
pool won the race), the claim is released (`store.release_claim`: no attempt counted, no
attempt row) and the run claims nothing more until one of its own calls ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from bus.base import Bus
from callflow.session import SessionResult, TurnRecord
from core.vocab import Disposition, Grade, Outcome
from telephony.base import CallHandle, DialRequest, Telephony, TelephonyBusyError

from . import store
from .compliance import CallingWindow, zone
from .store import AttemptRecord, ClaimedLead

log = logging.getLogger(__name__)

CALL_ENDED = "call/ended"  # bus topic: every stored attempt
LEAD_QUALIFIED = "lead/qualified"  # bus topic: an attempt that qualified its lead


class CallRunner(Protocol):
    """What the dialer needs of a call session (callflow.session.CallSession is one)."""

    async def run(self) -> SessionResult: ...


SessionFactory = Callable[[CallHandle, ClaimedLead], CallRunner]


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
    ) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        self._db = db
        self._tel = telephony
        self._make_session = make_session
        self._bus = bus
        self._trunk = trunk
        self._window = window
        self._max_concurrent = max_concurrent
        self._max_attempts = max_attempts
        self._node = node
        self._now = now
        self._undialed: set[int] = set()  # leads claimed by a run, their dial() not returned

    def _claim_limit(self, running: int) -> int:
        """How many leads a round may claim with `running` calls of its own under way."""
        own = self._max_concurrent - running
        pool = self._tel.free_slots - len(self._undialed)
        return max(0, min(own, pool))

    async def run_until_idle(self, campaign_id: int) -> list[AttemptSummary]:
        """Dial every lead that is due now (up to max_concurrent at once); return when none is
        (or when the pool is full and none of this run's calls is left to free a slot)."""
        done: list[AttemptSummary] = []
        running: dict[asyncio.Task[AttemptSummary | None], int] = {}
        pool_busy = False  # dial() said busy: claim again only once a call of ours ends
        try:
            while True:
                limit = 0 if pool_busy else self._claim_limit(len(running))
                for lead in await self._claim(campaign_id, limit):
                    self._undialed.add(lead.lead_id)
                    task = asyncio.create_task(
                        self.attempt(lead), name=f"dial[lead={lead.lead_id}]"
                    )
                    running[task] = lead.lead_id
                if not running:
                    return done
                finished, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                results = [task.result() for task in finished]
                for task in finished:
                    del running[task]
                done.extend(r for r in results if r is not None)
                pool_busy = None in results
        finally:
            self._undialed.difference_update(running.values())
            for task in running:
                task.cancel()
            if running:
                await asyncio.gather(*running, return_exceptions=True)

    async def _claim(self, campaign_id: int, limit: int) -> list[ClaimedLead]:
        if limit <= 0:
            return []
        return await asyncio.to_thread(
            store.claim_due_leads,
            self._db,
            campaign_id,
            limit=limit,
            now=self._now(),
            node=self._node,
            window=self._window,
            max_attempts=self._max_attempts,
        )

    async def attempt(self, lead: ClaimedLead) -> AttemptSummary | None:
        """Dial one claimed lead, run the call and store it. None when the telephony had no
        free slot after all: the claim is released and the lead is due again."""
        started = self._now()
        try:
            result, error = await self._call(lead)
        except TelephonyBusyError:
            await asyncio.to_thread(store.release_claim, self._db, lead, node=self._node)
            log.info("no free call slot: claim released", extra={"lead": lead.lead_id})
            return None
        rec = self._record(lead, started, result, error)
        attempt_id = await asyncio.to_thread(
            store.record_attempt,
            self._db,
            rec,
            max_attempts=self._max_attempts,
            default_callback=self._default_callback(lead),
        )
        await self._publish(rec, attempt_id)
        turns = result.turns if result else []
        return AttemptSummary(
            lead.lead_id, attempt_id, rec.disposition, rec.sip_code, rec.outcome, rec.grade, turns
        )

    async def _call(self, lead: ClaimedLead) -> tuple[SessionResult | None, str | None]:
        """(the session's result, None), or (None, what went wrong: DNC, a dial or call
        error). Lets TelephonyBusyError through: a dial the pool refused is no attempt."""
        try:
            if await asyncio.to_thread(store.is_dnc, self._db, lead.phone):
                return None, "number is on the do-not-call list"
            call = await self._tel.dial(self._request(lead))
        except TelephonyBusyError:
            raise
        except (OSError, RuntimeError, ValueError) as exc:
            log.warning("dial failed: %s", type(exc).__name__, extra={"lead": lead.lead_id})
            return None, str(exc)
        finally:
            self._undialed.discard(lead.lead_id)
        try:
            return await self._make_session(call, lead).run(), None
        except (OSError, RuntimeError, ValueError) as exc:
            log.warning("call failed: %s", type(exc).__name__, extra={"lead": lead.lead_id})
            return None, str(exc)

    def _request(self, lead: ClaimedLead) -> DialRequest:
        return DialRequest(
            uri=self._trunk.uri(lead.phone),
            username=self._trunk.username or None,
            password=self._trunk.password or None,
            ring_timeout_s=self._trunk.ring_timeout_s,
        )

    async def _publish(self, rec: AttemptRecord, attempt_id: int) -> None:
        lead = rec.lead
        await self._bus.publish(
            CALL_ENDED,
            {
                "campaign_id": lead.campaign_id,
                "lead_id": lead.lead_id,
                "attempt_id": attempt_id,
                "disposition": rec.disposition,
                "sip_code": rec.sip_code,
                "outcome": rec.outcome,
            },
        )
        if rec.outcome is Outcome.QUALIFIED:
            grade = rec.grade or store.DEFAULT_GRADE
            payload = {"lead_id": lead.lead_id, "attempt_id": attempt_id, "grade": grade}
            await self._bus.publish(LEAD_QUALIFIED, payload)

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
        )

    def _default_callback(self, lead: ClaimedLead) -> datetime:
        """Tomorrow at the window's opening hour in the lead's timezone."""
        local = self._now().astimezone(zone(lead.timezone)) + timedelta(days=1)
        opening = self._window.start
        local = local.replace(hour=opening.hour, minute=opening.minute, second=0, microsecond=0)
        return local.astimezone(UTC)
