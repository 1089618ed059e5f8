"""The dialer: claim due leads, dial them through the trunk, run a CallSession, store it all."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from bus.base import Bus
from callflow.session import CallSession, SessionResult, TurnRecord
from telephony.base import CallHandle, DialRequest, EndReason, Telephony

from . import store
from .compliance import CallingWindow, zone
from .store import AttemptRecord, ClaimedLead

log = logging.getLogger(__name__)

SessionFactory = Callable[[CallHandle, ClaimedLead], CallSession]


@dataclass(slots=True)
class AttemptSummary:
    lead_id: int
    attempt_id: int
    disposition: str
    sip_code: int | None
    outcome: str | None
    grade: str | None
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

    async def run_until_idle(self, campaign_id: int) -> list[AttemptSummary]:
        """Dial every lead that is due now (up to max_concurrent at once); return when none is."""
        done: list[AttemptSummary] = []
        running: set[asyncio.Task[AttemptSummary]] = set()
        try:
            while True:
                free = self._max_concurrent - len(running)
                leads = await asyncio.to_thread(
                    store.claim_due_leads,
                    self._db,
                    campaign_id,
                    limit=free,
                    now=self._now(),
                    node=self._node,
                    window=self._window,
                    max_attempts=self._max_attempts,
                )
                for lead in leads:
                    name = f"dial[lead={lead.lead_id}]"
                    running.add(asyncio.create_task(self.attempt(lead), name=name))
                if not running:
                    return done
                finished, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in finished:
                    running.discard(task)
                    done.append(task.result())
        finally:
            for task in running:
                task.cancel()
            if running:
                await asyncio.gather(*running, return_exceptions=True)

    async def attempt(self, lead: ClaimedLead) -> AttemptSummary:
        started = self._now()
        result: SessionResult | None = None
        error: str | None = None
        if await asyncio.to_thread(store.is_dnc, self._db, lead.phone):
            error = "number is on the do-not-call list"
        else:
            try:
                call = await self._tel.dial(
                    DialRequest(
                        uri=self._trunk.uri(lead.phone),
                        username=self._trunk.username or None,
                        password=self._trunk.password or None,
                        ring_timeout_s=self._trunk.ring_timeout_s,
                    )
                )
                result = await self._make_session(call, lead).run()
            except (OSError, RuntimeError, ValueError) as exc:
                log.warning("dial failed: %s", type(exc).__name__, extra={"lead": lead.lead_id})
                error = str(exc)
        rec = self._record(lead, started, result, error)
        default_cb = self._default_callback(lead)
        attempt_id = await asyncio.to_thread(
            store.record_attempt,
            self._db,
            rec,
            max_attempts=self._max_attempts,
            default_callback=default_cb,
        )
        await self._bus.publish(
            "call/ended",
            {
                "campaign_id": lead.campaign_id,
                "lead_id": lead.lead_id,
                "attempt_id": attempt_id,
                "disposition": rec.disposition,
                "sip_code": rec.sip_code,
                "outcome": rec.outcome,
            },
        )
        if rec.outcome == "qualified":
            await self._bus.publish(
                "lead/qualified",
                {"lead_id": lead.lead_id, "attempt_id": attempt_id, "grade": rec.grade or "B"},
            )
        return AttemptSummary(
            lead.lead_id,
            attempt_id,
            rec.disposition,
            rec.sip_code,
            rec.outcome,
            rec.grade,
            result.turns if result else [],
        )

    def _record(
        self, lead: ClaimedLead, started: datetime, res: SessionResult | None, error: str | None
    ) -> AttemptRecord:
        end = res.end if res else None
        if end is not None and end.end_reason is not None:
            disposition = str(end.end_reason)
        elif res is not None and res.answered:
            disposition = str(EndReason.COMPLETED)
        else:
            disposition = str(EndReason.FAILED)
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
