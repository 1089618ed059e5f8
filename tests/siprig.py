"""The rig of the real-SIP end-to-end tests (tests/test_e2e_*.py), the parts they all build.

The robot's `WorkerPool` of pjsua2 media workers and the simulated callee (`app.demo`'s
personas) on a listening pool of its own, both on loopback, started and closed together; a
campaign row; the trunk through Kamailio. Each test module adds its own store, sessions,
dialer and assertions.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.config import Config, load_config
from app.demo import make_callee
from app.engines import make_telephony
from campaigns.dialer import TrunkConfig
from models import Campaign
from simcallee.callee import SimulatedCallee
from simcallee.carrier import Carrier
from telephony.pool import WorkerPool
from tests.test_trunk_kamailio import PASSWORD, USER


def rig_config(base: Path, *, ring_timeout_s: float, max_call_s: float) -> Config:
    """config.yaml with the prompt cache and the callee's recordings under `base`."""
    cfg = load_config("config.yaml", env={})
    cfg.speech.prompt_cache_dir = str(base / "prompts")
    cfg.callee.recordings_dir = str(base / "callee-recordings")
    cfg.telephony.ring_timeout_s = ring_timeout_s
    cfg.callflow.max_call_s = max_call_s
    return cfg


def new_campaign(db: Any, prefix: str, script: str) -> int:
    """A fresh campaign (a random name after `prefix`) on `script`; its id."""
    with db.begin() as s:
        camp = Campaign(name=f"{prefix}-{os.urandom(4).hex()}", script=script)
        s.add(camp)
        s.flush()
        return int(camp.id)


def kamailio_trunk(carrier: Carrier) -> TrunkConfig:
    """Dial every number through `carrier` with its digest credentials."""
    return TrunkConfig(
        f"sip:{{phone}}@{carrier.host}", username=USER, password=PASSWORD, ring_timeout_s=5
    )


@dataclass(frozen=True, slots=True)
class SipPair:
    robot: WorkerPool
    callee: SimulatedCallee
    callee_pool: WorkerPool

    @property
    def callee_port(self) -> int:
        return self.callee_pool.sip_ports[0]


@contextlib.asynccontextmanager
async def sip_pair(cfg: Config) -> AsyncIterator[SipPair]:
    """The robot's pool and the simulated callee serving on its own pool, both started; the
    callee stopped and both pools closed on exit."""
    callee_pool = make_telephony(cfg, listen=True, sip_port=0, processes=1)
    robot = make_telephony(cfg)
    assert isinstance(callee_pool, WorkerPool) and isinstance(robot, WorkerPool)
    callee = make_callee(cfg, callee_pool)
    await callee.prepare()
    await callee_pool.start()
    await robot.start()
    serve = asyncio.create_task(callee.serve(), name="callee.serve")
    try:
        yield SipPair(robot, callee, callee_pool)
    finally:
        serve.cancel()
        await asyncio.gather(serve, return_exceptions=True)
        await robot.close()
        await callee_pool.close()
