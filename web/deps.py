"""What routes share: the app's state, who is signed in, role checks, checked forms, and
rendering a page with the user's language, role and CSRF token."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session, sessionmaker
from starlette.datastructures import FormData
from starlette.responses import Response

from app.config import Config
from bus.base import Bus
from models import Role

from . import csrf
from .auth import SESSION_USER, Forbidden, NotSignedIn, Principal, principal_by_id
from .auth import principal_by_token as _by_token
from .i18n import COOKIE, LANGS, lang_of, translator
from .masking import shown

TEMPLATES = Jinja2Templates(directory=Path(__file__).resolve().parent / "templates")


@dataclass(frozen=True, slots=True)
class WebState:
    """The console's view of the node: its database, its bus, its settings."""

    db: sessionmaker[Session]
    bus: Bus
    cfg: Config
    scripts_dir: Path  # campaigns are created with a script from here

    @property
    def max_upload_bytes(self) -> int:
        return int(self.cfg.web.max_upload_mb * 1024 * 1024)


def state(request: Request) -> WebState:
    web: WebState = request.app.state.web
    return web


def page_user(request: Request) -> Principal:
    """The session's user; NotSignedIn (a redirect to /login) without one."""
    uid = request.session.get(SESSION_USER)
    user = principal_by_id(state(request).db, uid) if isinstance(uid, int) else None
    if user is None:
        raise NotSignedIn
    return user


def api_user(request: Request) -> Principal:
    """The bearer token's user; NotSignedIn (401) without a valid one. Cookies are ignored."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    user = _by_token(state(request).db, token.strip()) if scheme.lower() == "bearer" else None
    if user is None:
        raise NotSignedIn
    return user


def require(least: Role, *, api: bool = False) -> Callable[[Request], Principal]:
    """A dependency: the signed-in user, if their role is at least `least` (else 403)."""

    def dependency(request: Request) -> Principal:
        user = api_user(request) if api else page_user(request)
        if not user.can(least):
            raise Forbidden
        return user

    return dependency


def checked_form() -> Callable[[Request], Awaitable[FormData]]:
    """A dependency: the POSTed form, after its CSRF token is checked (403 if wrong)."""

    async def dependency(request: Request) -> FormData:
        form = await request.form(max_files=1, max_fields=50)
        csrf.check(request, form.get(csrf.FIELD))
        return form

    return dependency


def render(
    request: Request,
    template: str,
    user: Principal | None,
    status_code: int = 200,
    **context: Any,
) -> Response:
    """A page in the request's language; `?lang=` is remembered in a cookie."""
    lang = lang_of(request)
    response = TEMPLATES.TemplateResponse(
        request,
        template,
        {
            "t": translator(lang),
            "lang": lang,
            "langs": LANGS,
            "user": user,
            "csrf": csrf.token(request),
            "phone": lambda number: shown(number, user),
            **context,
        },
        status_code=status_code,
    )
    if request.query_params.get("lang") in LANGS:
        response.set_cookie(COOKIE, lang, max_age=365 * 86400, httponly=True, samesite="lax")
    return response
