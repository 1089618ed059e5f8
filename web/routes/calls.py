"""Calls: the live view (server-sent events from the bus), a call's detail (turns with
intents, slots and scores) and its recording (served only to signed-in users)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import HTTPException
from fastapi.responses import Response, StreamingResponse

from bus.base import Bus, Message
from models import Role

from .. import queries
from ..auth import Principal
from ..deps import render, require, state
from ..recording import playable

router = APIRouter()
Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
CALL_EVENTS = "call/#"  # call/started, call/turn, call/ended (campaigns.dialer)
KEEPALIVE_S = 15.0  # an SSE comment this often keeps proxies from closing an idle stream


@router.get("/calls/live")
async def live(request: Request, user: Viewer) -> Response:
    recent = await asyncio.to_thread(queries.recent_calls, state(request).db)
    return render(request, "live.html", user, recent=recent)


@router.get("/calls/events")
async def events(request: Request, _user: Viewer) -> Response:
    """`text/event-stream`: one event per bus message under ``call/``, named by its topic."""
    return StreamingResponse(
        _sse(state(request).bus),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _sse(bus: Bus) -> AsyncIterator[str]:
    """The bus's call events as SSE frames. A task moves them into a queue, so the keep-alive
    timeout never cancels the bus subscription itself."""
    queue: asyncio.Queue[Message] = asyncio.Queue(maxsize=1000)

    async def pump() -> None:
        async for message in bus.subscribe(CALL_EVENTS):
            if queue.full():
                queue.get_nowait()  # a slow browser loses old events, never blocks the bus
            queue.put_nowait(message)

    task = asyncio.create_task(pump(), name="web.sse.pump")
    try:
        yield ": connected\n\n"
        while True:
            try:
                message = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
            except TimeoutError:
                yield ": keepalive\n\n"
                continue
            data = json.dumps(message.payload, ensure_ascii=False, default=str)
            yield f"event: {message.topic.replace('/', '_')}\ndata: {data}\n\n"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@router.get("/calls/{attempt_id}")
async def detail(request: Request, user: Viewer, attempt_id: int) -> Response:
    call = await asyncio.to_thread(queries.call_detail, state(request).db, attempt_id)
    if call is None:
        raise HTTPException(404, "no such call")
    return render(request, "call.html", user, call=call)


@router.get("/calls/{attempt_id}/recording")
async def recording(request: Request, _user: Viewer, attempt_id: int) -> Response:
    """The call's recording as one WAV (left: callee, right: robot), never cached by proxies."""
    call = await asyncio.to_thread(queries.call_detail, state(request).db, attempt_id)
    if call is None or call.recording is None:
        raise HTTPException(404, "this call has no recording")
    try:
        body = await asyncio.to_thread(playable, call.recording)
    except (OSError, ValueError) as exc:
        raise HTTPException(404, f"the recording cannot be read ({type(exc).__name__})") from None
    return Response(body, media_type="audio/wav", headers={"Cache-Control": "private, no-store"})
