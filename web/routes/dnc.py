"""Do-not-call management (`campaigns.dnc`): the global list or a campaign's; operators add
and remove numbers, viewers see the counts (and the numbers masked)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import HTTPException
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from campaigns import dnc
from models import Role

from .. import queries
from ..auth import Principal
from ..deps import checked_form, render, require, state

router = APIRouter()
Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
Form = Annotated[FormData, Depends(checked_form())]
SHOWN = 500  # numbers listed on the page at most


def _target(value: object) -> str | None:
    """A form's or query's campaign name; empty means the global list."""
    name = str(value or "").strip()
    return name or None


@router.get("/dnc")
async def dnc_page(request: Request, user: Viewer, campaign: str = "") -> Response:
    web = state(request)
    try:
        listing = await asyncio.to_thread(
            dnc.listing, web.db, campaign=_target(campaign), numbers=True
        )
    except dnc.DncError as exc:
        raise HTTPException(404, str(exc)) from None
    camps = await asyncio.to_thread(queries.campaigns, web.db)
    return render(
        request,
        "dnc.html",
        user,
        listing=listing,
        numbers=(listing.numbers or [])[:SHOWN],
        campaign=campaign,
        campaigns=[c.name for c in camps],
    )


@router.post("/dnc/{action}")
async def change(request: Request, _user: Operator, form: Form, action: str) -> Response:
    web, target = state(request), _target(form.get("campaign"))
    phone = str(form.get("phone", "")).strip()
    try:
        if action == "add":
            added = await asyncio.to_thread(
                dnc.add, web.db, [phone], campaign=target, source="console"
            )
            if added.invalid:
                raise dnc.DncError("not a phone number")
        elif action == "remove":
            await asyncio.to_thread(dnc.remove, web.db, phone, campaign=target)
        else:
            raise HTTPException(404, "no such action")
    except dnc.DncError as exc:
        raise HTTPException(400, str(exc)) from None
    suffix = f"?campaign={target}" if target else ""
    return RedirectResponse(f"/dnc{suffix}", status_code=303)
