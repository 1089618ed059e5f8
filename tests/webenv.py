"""The console over a fresh SQLite database and an in-process bus, with one user per role:
what the HTTP tests (TestClient) and the browser tests start from."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.config import Config, load_config
from bus import InProcessBus
from models import init_db
from web.app import create_app
from web.auth import add_user
from web.deps import WebState

PASSWORD = "correct-horse-9"
USERS = {"ada": "admin", "olga": "operator", "vic": "viewer"}
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def web_config(tmp_path: Path, **env: str) -> Config:
    return load_config(None, env={"DATABASE_URL": f"sqlite:///{tmp_path / 'web.db'}", **env})


def make_app(tmp_path: Path, **env: str) -> FastAPI:
    cfg = web_config(tmp_path, **env)
    db = init_db(cfg.database.url)
    for name, role in USERS.items():
        add_user(db, name, PASSWORD, role)
    scripts = Path(cfg.callflow.script).parent  # relative, as campaigns store it
    web = WebState(db=db, bus=InProcessBus(), cfg=cfg, scripts_dir=scripts)
    return create_app(web, secret_key="k" * 40)


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def sign_in(client: TestClient, name: str) -> str:
    """Sign `name` in; the session's CSRF token for its forms."""
    token = csrf_of(client.get("/login").text)
    r = client.post(
        "/login", data={"name": name, "password": PASSWORD, "csrf": token}, follow_redirects=False
    )
    assert r.status_code == 303, r.text
    return csrf_of(client.get("/campaigns").text)
