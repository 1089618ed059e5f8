"""A request body limit (lead-list uploads above all): refused with 413 and a message that
says the limit, before the form is parsed. A declared Content-Length over the limit is
refused at once; a body without one (chunked) is counted as it arrives and cut off there."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(Exception):
    pass


class BodyLimit:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def message(self) -> str:
        mb = round(self.max_bytes / (1024 * 1024), 2)
        return f"上传文件过大 / Upload too large: the limit is {mb:g} MB (web.max_upload_mb)"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, send)
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(scope, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        text = self.message()
        if scope["path"].startswith("/api/"):
            body = json.dumps({"error": text}, ensure_ascii=False).encode()
            kind = b"application/json"
        else:
            page = f"<!doctype html><meta charset=utf-8><title>413</title><h1>413</h1><p>{text}"
            body = (page + '</p><p><a href="javascript:history.back()">←</a></p>').encode()
            kind = b"text/html; charset=utf-8"
        headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})
