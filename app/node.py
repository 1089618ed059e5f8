"""`main.py run`: one production node: dial every active campaign, deliver the CRM outbox.

Two loops run side by side until cancelled (Ctrl-C, SIGTERM): the dialer loop works through
the active campaigns (each one until no lead is due, then the next) and the outbox loop pushes
qualified leads to the CRM every ``crm.poll_s``, so a long campaign never holds its leads back.
"""

from __future__ import annotations

import asyncio
import logging
import socket

from sqlalchemy import select

from bus import make_bus
from callflow.script import load_script
from campaigns.compliance import CallingWindow
from campaigns.dialer import Dialer, TrunkConfig
from app.config import Config
from crm_sync.base import CrmAdapter
from crm_sync.outbox import deliver_pending
from app.engines import (
    make_asr,
    make_crm,
    make_nlu,
    make_prompts,
    make_session_factory,
    make_telephony,
    make_tts,
)
from models import Campaign, init_db
from nlu.base import INTENTS

log = logging.getLogger(__name__)


async def run_node(cfg: Config, *, poll_s: float = 5.0) -> None:
    """Run until cancelled. The CRM is ``crm.engine`` (with "none", qualified leads stay in
    the outbox). `poll_s`: pause between dialing rounds."""
    crm = make_crm(cfg)
    db = init_db(cfg.database.url)
    nlu, asr = make_nlu(cfg), make_asr(cfg)
    prompts = make_prompts(cfg, make_tts(cfg))
    bus = make_bus(cfg.bus.mqtt_url, prefix=cfg.bus.topic_prefix)
    tel = make_telephony(cfg)
    window = CallingWindow.parse(cfg.campaign.calling_hours)
    trunk = TrunkConfig(
        cfg.telephony.trunk_uri,
        cfg.telephony.username,
        cfg.telephony.password,
        cfg.telephony.ring_timeout_s,
    )
    dialers: dict[str, Dialer] = {}  # one per script: built (and its lines rendered) once

    async def dialer_for(script_path: str) -> Dialer:
        if script_path not in dialers:
            script = load_script(script_path, known_intents=INTENTS)
            await prompts.prefetch(script.lines())
            dialers[script_path] = Dialer(
                db=db,
                telephony=tel,
                make_session=make_session_factory(cfg, script, asr, nlu, prompts),
                bus=bus,
                trunk=trunk,
                window=window,
                max_concurrent=cfg.campaign.max_concurrent_calls,
                max_attempts=cfg.campaign.max_attempts,
                node=socket.gethostname(),
            )
        return dialers[script_path]

    async def dial_forever() -> None:
        while True:
            with db() as s:
                campaigns = s.scalars(select(Campaign).where(Campaign.status == "active")).all()
            for camp in campaigns:
                await (await dialer_for(camp.script)).run_until_idle(camp.id)
            await asyncio.sleep(poll_s)

    async def deliver_forever(crm: CrmAdapter) -> None:
        while True:
            sent, failed = await deliver_pending(db, crm)
            if sent or failed:
                log.info("CRM outbox pass", extra={"sent": sent, "failed": failed})
            await asyncio.sleep(cfg.crm.poll_s)

    await bus.start()
    await tel.start()
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(dial_forever(), name="node.dialer")
            if crm is not None:
                tg.create_task(deliver_forever(crm), name="node.outbox")
    finally:
        await tel.close()
        await bus.close()
        await asr.aclose()
