"""`main.py run`: one production node: dial every active campaign, deliver the CRM outbox.

Two loops run side by side inside one ``Runtime`` until cancelled (Ctrl-C, SIGTERM): the
dialer loop works through the active campaigns (each one until no lead is due, then the next)
and the outbox loop pushes qualified leads to the CRM every ``crm.poll_s``, so a long campaign
never holds its leads back. Cancelling the node closes the runtime's engines in reverse order.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.config import Config
from app.runtime import Runtime
from crm_sync.base import CrmAdapter
from crm_sync.outbox import deliver_pending
from models import Campaign

log = logging.getLogger(__name__)


async def run_node(cfg: Config, *, poll_s: float = 5.0) -> None:
    """Run until cancelled. The CRM is ``crm.engine`` (with "none", qualified leads stay in
    the outbox). `poll_s`: pause between dialing rounds."""
    async with Runtime(cfg) as rt, asyncio.TaskGroup() as tg:
        tg.create_task(dial_forever(rt, poll_s), name="node.dialer")
        if rt.crm is not None:
            tg.create_task(deliver_forever(rt.db, rt.crm, cfg.crm.poll_s), name="node.outbox")


async def dial_forever(rt: Runtime, poll_s: float) -> None:
    """Dial each active campaign until none of its leads is due; pause `poll_s`; repeat."""
    while True:
        with rt.db() as s:
            campaigns = s.scalars(select(Campaign).where(Campaign.status == "active")).all()
        for camp in campaigns:
            dialer = await rt.dialer_for(camp.script)
            await dialer.run_until_idle(camp.id)
        await asyncio.sleep(poll_s)


async def deliver_forever(db: sessionmaker[Session], crm: CrmAdapter, poll_s: float) -> None:
    """Deliver the outbox's pending items to `crm` every `poll_s` (failed ones back off)."""
    while True:
        sent, failed = await deliver_pending(db, crm)
        if sent or failed:
            log.info("CRM outbox pass", extra={"sent": sent, "failed": failed})
        await asyncio.sleep(poll_s)
