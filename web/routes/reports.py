"""The daily report (`campaigns.reports.daily_report`) for a day: the self-contained HTML
page of `campaigns.report_html` when it is there, else the JSON's figures in a plain table."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import HTTPException
from fastapi.responses import HTMLResponse, Response

from campaigns.reports import ReportError, daily_report, parse_day, yesterday
from models import Role

from ..auth import Principal
from ..deps import WebState, render, require, state

router = APIRouter()
Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]


def report_for(web: WebState, day: str | None, campaign: str | None) -> dict[str, Any]:
    """The report of `day` (YYYY-MM-DD; default yesterday) in ``campaign.timezone``."""
    tz = web.cfg.campaign.timezone
    try:
        when = parse_day(day) if day else yesterday(tz)
        return daily_report(web.db, when, tz=tz, campaign=campaign or None, cfg=web.cfg.report)
    except ReportError as exc:
        raise HTTPException(400, str(exc)) from None


def _html(report: dict[str, Any]) -> str | None:
    """The HTML page of issue 14's report, if this version has it (the hook)."""
    try:
        from campaigns.report_html import to_html
    except ImportError:
        return None
    return to_html(report)


@router.get("/reports/daily")
async def daily(
    request: Request, user: Viewer, day: str | None = None, campaign: str | None = None
) -> Response:
    report = await asyncio.to_thread(report_for, state(request), day, campaign)
    page = _html(report)
    if page is not None:
        return HTMLResponse(page)
    return render(request, "report.html", user, report=report)
