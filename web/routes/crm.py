"""CRM dead letters in the console (`crm_sync.deadletters`): the outbox rows delivery gave up
on, with their tries and our own error text (no phone number, name or anything said), and a
replay button for operators and admins; viewers read the list only. A replay puts the row
back in the queue with its idempotency key: the node's next outbox pass delivers it."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import HTTPException
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.exc import SQLAlchemyError
from starlette.datastructures import FormData

from crm_sync.deadletters import DeadLetterError, dead_letters, replay
from models import Role

from ..auth import Principal
from ..deps import checked_form, render, require, state

router = APIRouter()
Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
Form = Annotated[FormData, Depends(checked_form())]
ERROR_SHOWN = 200  # characters of a row's last error on the page


@router.get("/crm/dead")
async def dead_page(request: Request, user: Viewer, replayed: str = "") -> Response:
    rows = await asyncio.to_thread(dead_letters, state(request).db)
    return render(
        request,
        "crm_dead.html",
        user,
        rows=rows,
        replayed=replayed,
        may_replay=user.can(Role.OPERATOR),
        error_shown=ERROR_SHOWN,
    )


def _chosen(form: FormData) -> list[int] | None:
    """The form's outbox id, or None for every dead letter (``all``); 400 on anything else."""
    if form.get("all"):
        return None
    value = str(form.get("id", "")).strip()
    if not value.isdigit():
        raise HTTPException(400, "choose a dead letter to replay (its outbox id)")
    return [int(value)]


@router.post("/crm/replay")
async def replay_post(request: Request, _user: Operator, form: Form) -> Response:
    ids = _chosen(form)
    try:
        done = await asyncio.to_thread(replay, state(request).db, ids)
    except DeadLetterError as exc:
        raise HTTPException(409, str(exc)) from None
    except SQLAlchemyError as exc:  # its text may hold parameters: the type only
        raise HTTPException(
            500, f"database error ({type(exc).__name__}); nothing changed"
        ) from None
    return RedirectResponse(f"/crm/dead?replayed={len(done)}", status_code=303)
