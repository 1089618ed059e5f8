"""`main.py run`: one production node: dial every running campaign, deliver the CRM outbox.

The configuration is checked first (``app.preflight``): a broken one stops the node before it
starts anything or claims a lead. Then, inside one ``Runtime``, supervised loops run side by
side until `stop` is set (SIGTERM, Ctrl-C):

- one dialing loop per running campaign, all sharing the node's call slots fairly. The
  campaigns' statuses are re-read every ``campaign.status_poll_s`` (0.5 s): a started or
  resumed campaign gets its loop within that. A paused one stops claiming at once (the dialer
  reads the status before each claim and each dial) and its loop ends when its calls in
  progress have; a running one with nothing left to dial is marked completed
  (``campaign.auto_complete``);
- the outbox loop, delivering qualified leads to the CRM every ``crm.poll_s``;
- the recording sweep (``recording.enabled``): recordings past ``recording.retention_days``
  are deleted every hour;
- the report loop: once today is ``report.daily_after_min`` old in ``campaign.timezone``,
  yesterday's daily report (JSON, CSV, HTML) is written to ``report.folder``, once.

Supervision: a loop whose pass fails (the database locked or unreachable, the CRM, anything
unexpected) logs the failure's type (never its text: it may hold a lead's phone) and runs again
after a capped exponential backoff; calls in progress go on. A campaign whose script does not
load is skipped and reported once per change of its error, and tried again later.

Shutdown: dialers stop claiming at once; live calls may finish within
``campaign.shutdown_grace_s``; the rest are hung up, and every outcome is stored before the
runtime closes. Cancelling `run_node` instead is the hard stop (live calls are cut unrecorded;
their leases expire into the retry policy).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from app import cluster as cluster_loops
from app.config import Config
from app.preflight import preflight
from app.runtime import Runtime, dial_plan
from campaigns.lifecycle import complete_if_done
from campaigns.report_files import ensure_daily
from campaigns.store import settle_expired_leases
from crm_sync.outbox import deliver_pending
from models import DIALABLE, Campaign

log = logging.getLogger(__name__)

BACKOFF_FIRST_S = 0.5  # a failed pass: the first wait, doubling ...
BACKOFF_MAX_S = 30.0  # ... up to this
SWEEP_POLL_S = 3600.0  # how often recordings past their retention are deleted
REPORT_POLL_S = 60.0  # how often the node looks whether yesterday's report files are due
HANGUP_WAIT_S = 15.0  # after hanging up at the deadline: how long the outcomes may take to store


async def run_node(
    cfg: Config,
    *,
    poll_s: float = 5.0,
    stop: asyncio.Event | None = None,
    node_id: str | None = None,
) -> None:
    """Run until `stop` is set (then shut down gracefully) or until cancelled. The CRM is
    ``crm.engine`` (with "none", qualified leads stay in the outbox). `poll_s`: pause between
    a campaign's dialing passes; `node_id`: the node's name on its leases, attempts and
    presence (default: unique per process). Raises ``PreflightError`` on a broken
    configuration."""
    preflight(cfg)
    plan = dial_plan(cfg)
    if node_id is not None:
        plan = dataclasses.replace(plan, node=node_id)
    async with Runtime(cfg, plan=plan) as rt:
        await Node(rt, poll_s).run(stop or asyncio.Event())


async def supervise(
    name: str, body: Callable[[], Awaitable[bool]], stopping: asyncio.Event, pause_s: float
) -> None:
    """Run `body` until `stopping` is set or it returns False: `pause_s` after a pass, a capped
    exponential backoff after a failure (logged by type: calls and other loops go on)."""
    failures = 0
    while not stopping.is_set():
        try:
            again = await body()
        except Exception as exc:
            failures += 1
            delay = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** (failures - 1))
            log.warning("%s failed (%s); retrying in %.1f s", name, type(exc).__name__, delay)
        else:
            if not again:
                return
            failures, delay = 0, pause_s
        await _sleep_unless(stopping, delay)


async def _sleep_unless(event: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(event.wait(), seconds)
    except TimeoutError:
        pass


class Node:
    """The supervised loops of one node over a started `Runtime`."""

    def __init__(self, rt: Runtime, poll_s: float) -> None:
        self.rt = rt
        self.poll_s = poll_s
        self.stopping = asyncio.Event()
        self.campaigns: dict[int, asyncio.Task[None]] = {}  # campaign id -> its dialing loop
        self.script_errors: dict[int, str] = {}  # campaign id -> the error last reported

    async def run(self, stop: asyncio.Event) -> None:
        rt = self.rt
        watch = asyncio.create_task(
            supervise("campaign watch", self._watch, self.stopping, self.poll_s),
            name="node.campaigns",
        )
        status_s = min(self.poll_s, rt.cfg.campaign.status_poll_s)
        statuses = asyncio.create_task(
            supervise("campaign status", self._start_loops, self.stopping, status_s),
            name="node.statuses",
        )
        outbox: asyncio.Task[None] | None = None
        if rt.crm is not None:
            outbox = asyncio.create_task(
                supervise("CRM outbox", self._deliver, self.stopping, rt.cfg.crm.poll_s),
                name="node.outbox",
            )
        sweep: asyncio.Task[None] | None = None
        if rt.recordings is not None:
            sweep = asyncio.create_task(
                supervise("recording sweep", self._sweep, self.stopping, SWEEP_POLL_S),
                name="node.recordings",
            )
        reports: asyncio.Task[None] | None = None
        if rt.cfg.report.folder:
            reports = asyncio.create_task(
                supervise("daily report", self._daily_report, self.stopping, REPORT_POLL_S),
                name="node.reports",
            )
        closed = asyncio.Event()  # every call over and stored: lease renewal and presence end
        cluster = [
            asyncio.create_task(cluster_loops.renew_leases(rt, closed), name="node.leases"),
            asyncio.create_task(cluster_loops.heartbeat(rt, closed), name="node.presence"),
            asyncio.create_task(
                cluster_loops.follow_control(rt, self._start_loops), name="node.control"
            ),
        ]
        try:
            await stop.wait()
            await self._shutdown(rt.cfg.campaign.shutdown_grace_s)
        finally:
            self.stopping.set()
            loops = [t for t in (outbox, reports, sweep) if t is not None]
            tasks = [watch, statuses, *loops, *self.campaigns.values()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            closed.set()
            cluster[-1].cancel()
            await asyncio.gather(*cluster, return_exceptions=True)

    async def _shutdown(self, grace_s: float) -> None:
        """Stop claiming; let live calls end within `grace_s`; hang up the rest; wait for
        every outcome to be stored."""
        log.warning("stopping: no new calls; %d live calls get %.0f s", self.rt.live_calls, grace_s)
        self.stopping.set()
        self.rt.stop_dialing()
        loops = [t for t in self.campaigns.values() if not t.done()]
        if not loops:
            return
        _, pending = await asyncio.wait(loops, timeout=grace_s)
        if pending:
            log.warning("shutdown deadline: hanging up %d live calls", self.rt.live_calls)
            await self.rt.hang_up_all()
            _, pending = await asyncio.wait(pending, timeout=HANGUP_WAIT_S)
        if pending:
            log.error("%d dialing loops did not finish; their leases will expire", len(pending))

    async def _watch(self) -> bool:
        """Settle expired leases (every campaign, paused ones too); start a dialing loop for
        each running campaign that has none."""
        await asyncio.to_thread(
            settle_expired_leases,
            self.rt.db,
            now=datetime.now(UTC),
            max_attempts=self.rt.cfg.campaign.max_attempts,
        )
        return await self._start_loops()

    async def _start_loops(self) -> bool:
        """Reload edited scripts; start a dialing loop for each running campaign that has none
        (cheap reads: run every ``campaign.status_poll_s``)."""
        if self.stopping.is_set():
            return False
        await self.rt.refresh_scripts()  # an edited script applies to new calls (app.scripts)
        for campaign_id in await asyncio.to_thread(self._active_campaigns):
            loop = self.campaigns.get(campaign_id)
            if loop is None or loop.done():
                self.campaigns[campaign_id] = asyncio.create_task(
                    self._dial_campaign(campaign_id), name=f"node.campaign[{campaign_id}]"
                )
        return True

    def _active_campaigns(self) -> list[int]:
        with self.rt.db() as s:
            return list(s.scalars(select(Campaign.id).where(Campaign.status.in_(DIALABLE))))

    def _active_script(self, campaign_id: int) -> str | None:
        """The campaign's script path; None once it is gone or no longer running."""
        with self.rt.db() as s:
            camp = s.get(Campaign, campaign_id)
            return camp.script if camp is not None and camp.status in DIALABLE else None

    async def _dial_campaign(self, campaign_id: int) -> None:
        await supervise(
            f"campaign {campaign_id}",
            lambda: self._dial_pass(campaign_id),
            self.stopping,
            self.poll_s,
        )

    async def _dial_pass(self, campaign_id: int) -> bool:
        """Dial the campaign until none of its leads is due; False once it is not running (or
        has just been completed): the loop ends, and the status watch starts another when it
        runs again."""
        script = await asyncio.to_thread(self._active_script, campaign_id)
        if script is None:
            return False
        try:
            dialer = await self.rt.dialer_for(script)
        except Exception as exc:
            self._report_skipped(campaign_id, exc)
            return True
        if self.script_errors.pop(campaign_id, None) is not None:
            log.warning("campaign %d: its script loads again; dialing", campaign_id)
        await dialer.run_until_idle(campaign_id)
        if self.rt.cfg.campaign.auto_complete and not self.stopping.is_set():
            done = await asyncio.to_thread(
                complete_if_done,
                self.rt.db,
                campaign_id,
                max_attempts=self.rt.cfg.campaign.max_attempts,
            )
            if done:
                log.warning("campaign %d completed: no lead left to dial", campaign_id)
                return False
        return await asyncio.to_thread(self._active_script, campaign_id) is not None

    def _report_skipped(self, campaign_id: int, exc: Exception) -> None:
        """Log a campaign whose script does not load, once per change of the error."""
        error = f"{type(exc).__name__}: {exc}".replace("\n", " ")
        if self.script_errors.get(campaign_id) != error:
            self.script_errors[campaign_id] = error
            log.error(
                "campaign %d skipped: its script does not load (%s); tried again every poll",
                campaign_id,
                error,
            )

    async def _daily_report(self) -> bool:
        """Write yesterday's report files once, after local midnight (campaigns.report_files)."""
        cfg = self.rt.cfg
        day = await asyncio.to_thread(
            ensure_daily,
            self.rt.db,
            tz=cfg.campaign.timezone,
            cfg=cfg.report,
            folder=Path(cfg.report.folder),
            after_min=cfg.report.daily_after_min,
        )
        if day is not None:
            log.warning("daily report written", extra={"day": day.isoformat()})
        return True

    async def _sweep(self) -> bool:
        """Delete recordings past ``recording.retention_days`` (campaigns.recordings)."""
        assert self.rt.recordings is not None
        await asyncio.to_thread(self.rt.recordings.sweep, datetime.now(UTC))
        return True

    async def _deliver(self) -> bool:
        assert self.rt.crm is not None
        sent, failed = await deliver_pending(
            self.rt.db,
            self.rt.crm,
            node=self.rt.plan.node,
            lease=self.rt.plan.lease,
            max_tries=self.rt.cfg.crm.max_tries,
            console_url=self.rt.cfg.crm.console_url,
        )
        if sent or failed:
            log.info("CRM outbox pass", extra={"sent": sent, "failed": failed})
        return True
