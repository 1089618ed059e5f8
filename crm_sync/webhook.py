"""Generic webhook CRM adapter: POST JSON to a URL (most CRMs accept an inbound webhook).

A row counts as delivered only when this very POST is answered 2xx. Redirects are never
followed: urllib would turn a 301/302/303 into a body-less GET to wherever the answer points,
carrying the Bearer token, and report success. A redirect is a delivery failure that names
itself (the URL in crm.webhook_url must be the final one). A token is refused over plain
http:// to any host but loopback unless ``crm.allow_insecure_http`` says otherwise.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import urllib.error
import urllib.request
from email.message import Message
from typing import IO, Any
from urllib.parse import urlsplit

from .base import CrmConfigError, CrmError


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """Follow no redirect: the 3xx answer is raised as an HTTPError instead."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Message,
        newurl: str,
    ) -> None:
        return None


def is_loopback(host: str | None) -> bool:
    """Whether `host` (a URL's hostname) is this machine: localhost, 127.0.0.0/8 or ::1."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class WebhookCrm:
    name = "webhook"

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout_s: float = 10.0,
        allow_insecure_http: bool = False,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise CrmConfigError("crm.webhook_url must be an http:// or https:// URL with a host")
        insecure = parts.scheme == "http" and not is_loopback(parts.hostname)
        if token and insecure and not allow_insecure_http:
            raise CrmConfigError(
                "crm.webhook_url is plain http:// to a non-loopback host, so the CRM token "
                "would travel unencrypted: use https://, or set crm.allow_insecure_http: true"
            )
        self._url, self._token, self._timeout = url, token, timeout_s
        self._opener = urllib.request.build_opener(_RefuseRedirects)

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
            with self._opener.open(req, timeout=self._timeout) as resp:
                resp.read()
                status, answered_by = resp.status, resp.geturl()
        except urllib.error.HTTPError as exc:
            exc.close()
            raise _http_error(exc.code) from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise CrmError(f"CRM unreachable: {type(exc).__name__}") from None
        if not 200 <= status < 300 or answered_by != self._url:  # never expected: belt and braces
            raise CrmError(f"CRM answered HTTP {status}, not a 2xx to this POST", retryable=False)


def _http_error(code: int) -> CrmError:
    if 300 <= code < 400:
        # the same POST will be redirected again: only a corrected crm.webhook_url helps
        return CrmError(
            f"CRM answered a redirect (HTTP {code}), not followed: "
            "set crm.webhook_url to the final URL",
            retryable=False,
        )
    # 4xx other than 408/429 will not get better by retrying
    return CrmError(f"CRM answered HTTP {code}", retryable=code >= 500 or code in (408, 429))
