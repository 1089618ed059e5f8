"""Generic webhook CRM adapter: POST JSON to a URL (most CRMs accept an inbound webhook)."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from typing import Any

from .base import CrmError


class WebhookCrm:
    name = "webhook"

    def __init__(self, url: str, *, token: str | None = None, timeout_s: float = 10.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"CRM webhook URL must be http(s), got {url!r}")
        self._url, self._token, self._timeout = url, token, timeout_s

    async def deliver(self, kind: str, payload: dict[str, Any]) -> None:
        await asyncio.to_thread(self._post, kind, payload)

    def _post(self, kind: str, payload: dict[str, Any]) -> None:
        body = json.dumps({"kind": kind, **payload}, ensure_ascii=False, default=str).encode()
        req = urllib.request.Request(self._url, data=body, method="POST")
        req.add_header("Content-Type", "application/json; charset=utf-8")
        req.add_header("Idempotency-Key", str(payload.get("outbox_id", "")))
        if self._token:
            req.add_header("Authorization", f"Bearer {self._token}")
        try:
            with urllib.request.urlopen(req, timeout=self._timeout) as resp:
                resp.read()
        except urllib.error.HTTPError as exc:
            # 4xx other than 408/429 will not get better by retrying
            retry = exc.code >= 500 or exc.code in (408, 429)
            raise CrmError(f"CRM answered HTTP {exc.code}", retryable=retry) from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise CrmError(f"CRM unreachable: {type(exc).__name__}") from None
