"""Campaign pages: the list, creating one with a script, uploading a lead list (the
importer's validation report: accepted, duplicates, each rejected row and why) and the
lifecycle buttons (`campaigns.lifecycle`: operators and admins only)."""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import HTTPException
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.exc import IntegrityError
from starlette.datastructures import FormData, UploadFile

from callflow.script import ScriptError
from callflow.script_parse import load_script
from campaigns.importer import ImportReport, LeadImportError, import_leads
from campaigns.lifecycle import TRANSITIONS, LifecycleError, transition
from models import Campaign, CampaignStatus, Role
from nlu.base import INTENTS

from .. import queries
from ..auth import Principal
from ..deps import WebState, checked_form, render, require, state

router = APIRouter()
Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
Form = Annotated[FormData, Depends(checked_form())]
CHUNK = 1 << 16


def scripts(web: WebState) -> list[str]:
    """The scripts a campaign may use: the YAML files beside the configured one."""
    return sorted(
        str(p)
        for p in web.scripts_dir.glob("*.yaml")
        if not p.name.endswith(".knowledge.yaml")  # a script's knowledge base, not a script
    )


@router.get("/")
async def home(_user: Viewer) -> Response:
    return RedirectResponse("/campaigns", status_code=303)


@router.get("/campaigns")
async def campaign_list(request: Request, user: Viewer) -> Response:
    web = state(request)
    rows = await asyncio.to_thread(queries.campaigns, web.db)
    return render(request, "campaigns.html", user, campaigns=rows, scripts=scripts(web))


@router.post("/campaigns")
async def create(request: Request, user: Operator, form: Form) -> Response:
    web = state(request)
    name, script = str(form.get("name", "")).strip(), str(form.get("script", ""))
    if not name or len(name) > 200:
        raise HTTPException(400, "a campaign name is 1 to 200 characters")
    if script not in scripts(web):
        raise HTTPException(400, "choose one of the listed scripts")
    try:
        load_script(script, known_intents=INTENTS)
    except ScriptError as exc:
        raise HTTPException(400, f"the script does not load: {exc}") from None
    try:
        campaign_id = await asyncio.to_thread(_create, web, name, script)
    except IntegrityError:
        raise HTTPException(409, f"a campaign named {name!r} exists already") from None
    return RedirectResponse(f"/campaigns/{campaign_id}", status_code=303)


def _create(web: WebState, name: str, script: str) -> int:
    """A draft campaign (imports and starts come after); its id."""
    with web.db.begin() as s:
        camp = Campaign(
            name=name,
            script=script,
            status=CampaignStatus.DRAFT,
            timezone=web.cfg.campaign.timezone,
        )
        s.add(camp)
        s.flush()
        return camp.id


@router.get("/campaigns/{campaign_id}")
async def campaign_page(request: Request, user: Viewer, campaign_id: int) -> Response:
    camp = await asyncio.to_thread(queries.campaign, state(request).db, campaign_id)
    if camp is None:
        raise HTTPException(404, "no such campaign")
    return render(request, "campaign.html", user, campaign=camp, actions=list(TRANSITIONS))


@router.post("/campaigns/{campaign_id}/upload")
async def upload(request: Request, user: Operator, form: Form, campaign_id: int) -> Response:
    web = state(request)
    camp = await asyncio.to_thread(queries.campaign, web.db, campaign_id)
    if camp is None:
        raise HTTPException(404, "no such campaign")
    file = form.get("file")
    if not isinstance(file, UploadFile) or not file.filename:
        raise HTTPException(400, "choose a lead list file (CSV or TSV)")
    try:
        report = await _import(web, camp.name, camp.script, file)
    except LeadImportError as exc:
        errors = [line.split(": ", 1)[-1] for line in exc.errors]  # not the temporary path
        return render(request, "upload.html", user, 400, campaign=camp, errors=errors)
    return render(request, "upload.html", user, campaign=camp, report=report, errors=[])


async def _import(web: WebState, name: str, script: str, file: UploadFile) -> ImportReport:
    """The upload in a private temporary file (it holds phones), imported, then deleted."""
    suffix = Path(file.filename or "leads.csv").suffix.lower()[:8] or ".csv"
    fd, tmp = tempfile.mkstemp(prefix="leads-", suffix=suffix)  # mode 0600
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := await file.read(CHUNK):
                out.write(chunk)
        return await asyncio.to_thread(
            import_leads,
            web.db,
            name,
            tmp,
            script=script,
            timezone=web.cfg.campaign.timezone,
            check_script=True,
        )
    finally:
        os.unlink(tmp)


@router.post("/campaigns/{campaign_id}/{action}")
async def lifecycle(
    request: Request, user: Operator, form: Form, campaign_id: int, action: str
) -> Response:
    web = state(request)
    camp = await asyncio.to_thread(queries.campaign, web.db, campaign_id)
    if camp is None or action not in TRANSITIONS:
        raise HTTPException(404, "no such campaign or action")
    try:
        await asyncio.to_thread(transition, web.db, camp.name, action)
    except LifecycleError as exc:
        raise HTTPException(409, str(exc)) from None
    return RedirectResponse(f"/campaigns/{campaign_id}", status_code=303)
