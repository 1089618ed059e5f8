"""`main.py serve`: the console on uvicorn, over the configured database and bus.

With ``--node`` the same process also runs the node (`app.node`), sharing its runtime's
database and in-process bus, so the embedded single-machine default (SQLite, no broker) sees
its calls live. Without it, live events come from the bus: MQTT (``MQTT_URL``) shared with
the nodes, or nothing live on the in-process bus (the call list still shows stored calls).
"""

from __future__ import annotations

import asyncio
import os
import secrets
from pathlib import Path

import uvicorn
from sqlalchemy.orm import Session, sessionmaker

from app.config import Config
from app.node import Node
from app.preflight import preflight
from app.runtime import Runtime
from bus import make_bus
from bus.base import Bus
from models import init_db

from .app import create_app
from .deps import WebState

GRACEFUL_S = 3  # open event streams never end by themselves: close them after this
NODE_POLL_S = 1.0


def secret_key(path: str) -> str:
    """The cookie-signing key in `path`, made (random, mode 0600) the first time."""
    p = Path(path)
    if not p.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
    key = p.read_text().strip()
    if len(key) < 32:
        raise ValueError(f"{path}: the web secret is too short (32 characters at least)")
    return key


def _server(cfg: Config, web: WebState, host: str, port: int) -> uvicorn.Server:
    app = create_app(web, secret_key=secret_key(cfg.web.secret_file))
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,  # URLs carry search terms (names, numbers)
        timeout_graceful_shutdown=GRACEFUL_S,
    )
    return uvicorn.Server(config)


def _web_state(cfg: Config, db: sessionmaker[Session], bus: Bus) -> WebState:
    return WebState(db=db, bus=bus, cfg=cfg, scripts_dir=Path(cfg.callflow.script).parent)


async def serve(cfg: Config, *, host: str, port: int, with_node: bool = False) -> None:
    """Serve until SIGINT/SIGTERM (uvicorn's handlers); then the node, if any, stops too."""
    if with_node:
        preflight(cfg)
        async with Runtime(cfg) as rt:
            server = _server(cfg, _web_state(cfg, rt.db, rt.bus), host, port)
            stop = asyncio.Event()
            node = asyncio.create_task(Node(rt, NODE_POLL_S).run(stop), name="serve.node")
            try:
                await server.serve()
            finally:
                stop.set()
                await node
        return
    db = await asyncio.to_thread(init_db, cfg.database.url)
    bus = make_bus(cfg.bus.mqtt_url, prefix=cfg.bus.topic_prefix)
    await bus.start()
    try:
        await _server(cfg, _web_state(cfg, db, bus), host, port).serve()
    finally:
        await bus.close()
