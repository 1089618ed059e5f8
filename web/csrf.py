"""CSRF protection for the console's forms: a per-session token in a hidden field.

The token is made at the session's first page and kept in the signed session cookie; every
form POST must send it back as ``csrf`` (checked in constant time) or is refused with 403.
SameSite=Lax cookies already stop most cross-site posts; the token covers the rest (older
browsers, same-site subdomains). The JSON API takes bearer tokens only, so it needs none.
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import Request
from fastapi.exceptions import HTTPException

SESSION_KEY = "csrf"
FIELD = "csrf"


def token(request: Request) -> str:
    """This session's token (made on first use)."""
    value = request.session.get(SESSION_KEY)
    if not isinstance(value, str) or not value:
        value = secrets.token_urlsafe(32)
        request.session[SESSION_KEY] = value
    return value


def check(request: Request, sent: object) -> None:
    """Refuse (403) a form whose token is missing or not this session's."""
    expected = request.session.get(SESSION_KEY)
    if not (
        isinstance(expected, str)
        and isinstance(sent, str)
        and expected
        and hmac.compare_digest(expected.encode(), sent.encode())
    ):
        raise HTTPException(403, "the form's CSRF token is missing or wrong: reload the page")
