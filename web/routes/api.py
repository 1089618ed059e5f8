"""The JSON API for scripts and other systems: ``Authorization: Bearer <token>`` only
(`main.py user token NAME` makes one); no session cookie, so no CSRF exposure. The same roles
as the pages: viewers read (numbers masked), operators also run campaigns."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import HTTPException

from campaigns.lifecycle import TRANSITIONS, LifecycleError, transition
from models import Role

from .. import queries
from ..auth import Principal
from ..deps import require, state
from ..masking import shown
from .reports import report_for

router = APIRouter(prefix="/api")
Viewer = Annotated[Principal, Depends(require(Role.VIEWER, api=True))]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR, api=True))]


@router.get("/me")
async def me(user: Viewer) -> dict[str, Any]:
    return {"name": user.name, "role": str(user.role)}


@router.get("/campaigns")
async def campaigns(request: Request, _user: Viewer) -> list[dict[str, Any]]:
    rows = await asyncio.to_thread(queries.campaigns, state(request).db)
    return [
        {"id": c.id, "name": c.name, "script": c.script, "state": c.state, "leads": c.leads}
        for c in rows
    ]


@router.post("/campaigns/{campaign_id}/{action}")
async def lifecycle(
    request: Request, _user: Operator, campaign_id: int, action: str
) -> dict[str, Any]:
    web = state(request)
    camp = await asyncio.to_thread(queries.campaign, web.db, campaign_id)
    if camp is None or action not in TRANSITIONS:
        raise HTTPException(404, "no such campaign or action")
    try:
        before, after = await asyncio.to_thread(transition, web.db, camp.name, action)
    except LifecycleError as exc:
        raise HTTPException(409, str(exc)) from None
    return {"campaign": camp.name, "before": before, "after": after}


@router.get("/leads")
async def leads(
    request: Request,
    user: Viewer,
    status: str = "",
    grade: str = "",
    campaign: int | None = None,
) -> list[dict[str, Any]]:
    rows = await asyncio.to_thread(
        queries.leads, state(request).db, status=status, grade=grade, campaign_id=campaign
    )
    return [
        {
            "id": r.id,
            "campaign_id": r.campaign_id,
            "phone": shown(r.phone, user),
            "name": r.name,
            "status": r.status,
            "grade": r.grade,
            "attempts": r.attempts,
        }
        for r in rows
    ]


@router.get("/calls/{attempt_id}")
async def call(request: Request, user: Viewer, attempt_id: int) -> dict[str, Any]:
    c = await asyncio.to_thread(queries.call_detail, state(request).db, attempt_id)
    if c is None:
        raise HTTPException(404, "no such call")
    a = c.attempt
    return {
        "id": a.id,
        "campaign": c.campaign,
        "lead_id": a.lead_id,
        "phone": shown(c.lead.phone, user),
        "disposition": a.disposition,
        "outcome": a.outcome,
        "duration_s": a.duration_s,
        "recording": f"/calls/{a.id}/recording" if c.recording else None,
        "turns": [
            {
                "seq": t.seq,
                "speaker": t.speaker,
                "text": t.text,
                "intent": t.intent,
                "confidence": t.confidence,
                "slots": (t.detail or {}).get("slots"),
            }
            for t in c.turns
        ],
    }


@router.get("/reports/daily")
async def daily(
    request: Request, _user: Viewer, day: str | None = None, campaign: str | None = None
) -> dict[str, Any]:
    return await asyncio.to_thread(report_for, state(request), day, campaign)
