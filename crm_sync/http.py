"""One HTTP exchange with a CRM (httpx), its failures as `CrmError`s with the right
`retryable`, and the rule on plain http:// for credentials.

Redirects are never followed (httpx's default, kept on purpose): a 3xx would turn the POST
into a body-less GET to wherever it points, carrying the credentials. Delivered means a 2xx to
this very request. Error messages name the status or the failure's type only, never the URL,
the token or the body.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any
from urllib.parse import urlsplit

import httpx

from .base import CrmConfigError, CrmError

__all__ = ["CrmConfigError", "CrmError", "check_url", "client", "http_error", "send"]


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


def check_url(url: str, key: str, *, secret: bool, allow_insecure_http: bool) -> str:
    """`url` if usable: http(s) with a host; plain http:// to a remote host only without a
    secret to carry, or when `allow_insecure_http` says so. `key`: the setting, for errors."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CrmConfigError(f"{key} must be an http:// or https:// URL with a host")
    insecure = parts.scheme == "http" and not is_loopback(parts.hostname)
    if secret and insecure and not allow_insecure_http:
        raise CrmConfigError(
            f"{key} is plain http:// to a non-loopback host, so the CRM token "
            "would travel unencrypted: use https://, or set crm.allow_insecure_http: true"
        )
    return url


def http_error(code: int) -> CrmError:
    """The failure a non-2xx answer means: 5xx, 408 and 429 may pass; other 4xx and any
    redirect will not (only a corrected setting or a replay after fixing the CRM helps)."""
    if 300 <= code < 400:
        return CrmError(
            f"CRM answered a redirect (HTTP {code}), not followed: "
            "set the CRM URL to the final one",
            retryable=False,
        )
    return CrmError(f"CRM answered HTTP {code}", retryable=code >= 500 or code in (408, 429))


def json_body(data: Any) -> bytes:
    """The exact bytes sent (and signed): UTF-8 JSON, Chinese unescaped."""
    return json.dumps(data, ensure_ascii=False, default=str).encode()


async def send(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    ok_statuses: tuple[int, ...] = (),
) -> httpx.Response:
    """Send one request; a 2xx (or a status in `ok_statuses`) is returned, anything else is
    raised as a `CrmError`."""
    hdrs = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
    try:
        resp = await client.request(method, url, content=body, headers=hdrs)
    except httpx.TimeoutException as exc:
        raise CrmError(f"CRM timed out ({type(exc).__name__})") from None
    except httpx.HTTPError as exc:
        raise CrmError(f"CRM unreachable ({type(exc).__name__})") from None
    if 200 <= resp.status_code < 300 or resp.status_code in ok_statuses:
        return resp
    raise http_error(resp.status_code)


def client(timeout_s: float) -> httpx.AsyncClient:
    """A client for one delivery (redirects not followed)."""
    return httpx.AsyncClient(timeout=timeout_s, follow_redirects=False)


def answer_json(resp: httpx.Response) -> dict[str, Any]:
    """The answer's JSON object ({} when it is not one)."""
    try:
        data = resp.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
