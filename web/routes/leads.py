"""Leads: search by phone or name, filter by status, grade and campaign. Viewers see the
numbers masked (and cannot search by them: a number search would reveal them)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from core.vocab import Grade
from models import LeadStatus, Role

from .. import queries
from ..auth import Principal
from ..deps import render, require, state

router = APIRouter()
Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]


@router.get("/leads")
async def leads(
    request: Request,
    user: Viewer,
    q: str = "",
    status: str = "",
    grade: str = "",
    campaign: int | None = None,
) -> Response:
    web = state(request)
    if not user.sees_numbers and any(c.isdigit() for c in q):
        q = ""  # a viewer probing digits could unmask a number
    rows, camps = await asyncio.gather(
        asyncio.to_thread(
            queries.leads, web.db, q=q.strip(), status=status, grade=grade, campaign_id=campaign
        ),
        asyncio.to_thread(queries.campaigns, web.db),
    )
    return render(
        request,
        "leads.html",
        user,
        leads=rows,
        campaigns={c.id: c.name for c in camps},
        statuses=[str(s) for s in LeadStatus],
        grades=[str(g) for g in Grade],
        q=q,
        status=status,
        grade=grade,
        campaign=campaign,
    )
