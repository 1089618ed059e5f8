"""Sign-in and sign-out. The login form has a CSRF token too (no login CSRF)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from .. import csrf
from ..auth import SESSION_USER, check_password
from ..deps import checked_form, render, state

router = APIRouter()
Form = Annotated[FormData, Depends(checked_form())]


@router.get("/login")
async def login_page(request: Request) -> Response:
    return render(request, "login.html", None)


@router.post("/login")
async def login(request: Request, form: Form) -> Response:
    name, password = str(form.get("name", "")), str(form.get("password", ""))
    user = await asyncio.to_thread(check_password, state(request).db, name, password)
    if user is None:
        return render(request, "login.html", None, status_code=401, failed=True, name=name)
    request.session.clear()  # a fresh session (and CSRF token) for the signed-in user
    request.session[SESSION_USER] = user.id
    csrf.token(request)
    return RedirectResponse("/campaigns", status_code=303)


@router.post("/logout")
async def logout(request: Request, _form: Form) -> Response:
    request.session.clear()
    return RedirectResponse("/login", status_code=303)
