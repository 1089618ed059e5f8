"""`main.py run`: one production node: dial every active campaign, deliver the CRM outbox."""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

from sqlalchemy import select

from bus import make_bus
from callflow.script import load_script
from campaigns.compliance import CallingWindow
from campaigns.dialer import Dialer, TrunkConfig
from config import Config
from crm_sync.outbox import deliver_pending
from engines import (
    make_asr,
    make_nlu,
    make_prompts,
    make_session_factory,
    make_telephony,
    make_tts,
)
from models import Campaign, init_db
from nlu.base import INTENTS

log = logging.getLogger(__name__)


async def run_node(cfg: Config, *, crm: Any | None = None, poll_s: float = 5.0) -> None:
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

    await bus.start()
    await tel.start()
    try:
        while True:
            with db() as s:
                campaigns = s.scalars(select(Campaign).where(Campaign.status == "active")).all()
            for camp in campaigns:
                await (await dialer_for(camp.script)).run_until_idle(camp.id)
            if crm is not None:
                await deliver_pending(db, crm)
            await asyncio.sleep(poll_s)
    finally:
        await tel.close()
        await bus.close()
