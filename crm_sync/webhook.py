"""Generic webhook CRM adapter: POST the payload as JSON to a URL, signed.

Request::

    POST <crm.webhook_url>
    Content-Type: application/json; charset=utf-8
    Idempotency-Key: callbot-outbox-<outbox id>     (the same on every retry of a row)
    X-Callbot-Timestamp: <unix seconds>
    X-Callbot-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + raw body)>
    Authorization: Bearer <crm.token>                (when a token is set)

    {"kind": "lead.qualified", ...the payload of crm_sync.payload...}

Verifying (the receiver): take the raw body bytes as received, compute
``hmac.new(secret, timestamp.encode() + b"." + body, sha256).hexdigest()``, compare it with
the header's hex in constant time, and refuse a timestamp more than a few minutes old (a
replayed request). ``verify_signature`` below is that recipe. The secret is
``crm.webhook_secret`` (set it in the environment: ``CALLBOT__CRM__WEBHOOK_SECRET``); without
one the headers are not sent.

A row counts as delivered only when this very POST is answered 2xx; redirects are never
followed (``crm_sync.http``). A token is refused over plain http:// to any host but loopback
unless ``crm.allow_insecure_http`` says otherwise.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

from . import http
from .http import is_loopback
from .payload import idempotency_key

__all__ = ["SIGNATURE_HEADER", "TIMESTAMP_HEADER", "WebhookCrm", "is_loopback", "sign"]

SIGNATURE_HEADER = "X-Callbot-Signature"
TIMESTAMP_HEADER = "X-Callbot-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_SKEW_S = 300  # what verify_signature accepts by default


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value for `body` sent at `timestamp` (unix seconds, text)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify_signature(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    now: float | None = None,
    max_skew_s: float = MAX_SKEW_S,
) -> bool:
    """The receiver's check: the signature matches and the timestamp is recent."""
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - sent) > max_skew_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


class WebhookCrm:
    name = "webhook"

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        secret: str | None = None,
        timeout_s: float = 10.0,
        allow_insecure_http: bool = False,
    ) -> None:
        self._url = http.check_url(
            url,
            "crm.webhook_url",
            secret=bool(token),
            allow_insecure_http=allow_insecure_http,
        )
        self._token, self._secret, self._timeout = token, secret, timeout_s

    def headers(self, payload: dict[str, Any], body: bytes) -> dict[str, str]:
        """The request's headers for `body` (signed when a secret is set)."""
        out = {IDEMPOTENCY_HEADER: idempotency_key(int(payload.get("outbox_id") or 0))}
        if self._token:
            out["Authorization"] = f"Bearer {self._token}"
        if self._secret:
            ts = str(int(time.time()))
            out[TIMESTAMP_HEADER] = ts
            out[SIGNATURE_HEADER] = sign(self._secret, ts, body)
        return out

    async def deliver(self, kind: str, payload: dict[str, Any]) -> None:
        body = http.json_body({**payload, "kind": kind})
        async with http.client(self._timeout) as client:
            await http.send(
                client, "POST", self._url, body=body, headers=self.headers(payload, body)
            )
