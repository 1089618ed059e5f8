"""The console's FastAPI app: pages (Jinja2, server-rendered) and the JSON API under /api/.

Every route needs a signed-in user except ``/login`` and ``/static/``: a page without a
session redirects to /login, an API call without a bearer token gets 401. Sessions are signed
cookies (HttpOnly, SameSite=Lax, Secure with ``web.secure_cookies``); form POSTs carry a CSRF
token (`web.csrf`); request bodies are capped at ``web.max_upload_mb`` (413).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import HTTPException
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from .auth import Forbidden, NotSignedIn
from .deps import WebState, render
from .limits import BodyLimit
from .routes import api, calls, campaigns, crm, dnc, leads, login, reports

STATIC = Path(__file__).resolve().parent / "static"
SESSION_MAX_AGE_S = 12 * 3600  # a signed-in session lasts one working day


def create_app(web: WebState, *, secret_key: str) -> FastAPI:
    app = FastAPI(title="callbot console", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.web = web
    app.add_middleware(
        SessionMiddleware,
        secret_key=secret_key,
        session_cookie="callbot_session",
        max_age=SESSION_MAX_AGE_S,
        same_site="lax",
        https_only=web.cfg.web.secure_cookies,
    )
    app.add_middleware(BodyLimit, max_bytes=web.max_upload_bytes)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for module in (login, campaigns, calls, leads, dnc, reports, crm, api):
        app.include_router(module.router)
    _handlers(app)
    return app


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _handlers(app: FastAPI) -> None:
    @app.exception_handler(NotSignedIn)
    async def not_signed_in(request: Request, _exc: NotSignedIn) -> Response:
        if _is_api(request):
            return JSONResponse(
                {"error": "sign in: send Authorization: Bearer <token>"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        return RedirectResponse("/login", status_code=303)

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, _exc: Forbidden) -> Response:
        return _error(request, 403, "your role does not allow this / 您的角色无此权限")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        return _error(request, exc.status_code, str(exc.detail))


def _error(request: Request, status: int, message: str) -> Response:
    if _is_api(request):
        return JSONResponse({"error": message}, status_code=status)
    return render(request, "error.html", None, status_code=status, status=status, message=message)
