"""Who is asking: console users (Argon2 password hashes), API tokens, roles.

Pages sign in at ``/login`` and carry a signed session cookie (Starlette's
``SessionMiddleware``: HttpOnly, SameSite=Lax); the JSON API under ``/api/`` takes only
``Authorization: Bearer <token>`` (never the cookie, so a cross-site form cannot drive it).
Tokens are random, shown once, and stored as their SHA-256. Roles rank viewer < operator <
admin: a route asks for the least role it needs (`require`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from models import ApiToken, Role, User

RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}
MIN_PASSWORD = 8
TOUCH_EVERY = timedelta(hours=1)  # how stale a token's last_used_at may get
SESSION_USER = "uid"  # the session cookie's key for the signed-in user's id

_hasher = PasswordHasher()
# verified against when the name is unknown, so a wrong name costs what a wrong password does
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


class AuthError(ValueError):
    """A user or token request that cannot apply (one line, no secret in it)."""


class NotSignedIn(Exception):
    """No valid session or token: 401 for the API, a redirect to /login for pages."""


class Forbidden(Exception):
    """Signed in, but the role does not allow it: 403."""


@dataclass(frozen=True, slots=True)
class Principal:
    """The signed-in user as routes see it."""

    id: int
    name: str
    role: Role

    def can(self, least: Role) -> bool:
        return RANK[self.role] >= RANK[least]

    @property
    def sees_numbers(self) -> bool:
        """Viewers see phone numbers masked."""
        return self.can(Role.OPERATOR)


def _principal(user: User) -> Principal:
    return Principal(user.id, user.name, Role(user.role))


def add_user(db: sessionmaker[Session], name: str, password: str, role: str) -> None:
    name = name.strip()
    if not name or len(name) > 100:
        raise AuthError("a user name is 1 to 100 characters")
    if role not in RANK:
        raise AuthError(f"unknown role {role!r} (admin, operator, viewer)")
    if len(password) < MIN_PASSWORD:
        raise AuthError(f"the password must have at least {MIN_PASSWORD} characters")
    try:
        with db.begin() as s:
            s.add(User(name=name, password_hash=_hasher.hash(password), role=role))
    except IntegrityError:
        raise AuthError(f"a user named {name!r} exists already") from None


def check_password(db: sessionmaker[Session], name: str, password: str) -> Principal | None:
    """The user if `password` is theirs; None otherwise (same work for an unknown name)."""
    with db() as s:
        user = s.scalar(select(User).where(User.name == name.strip()))
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerifyMismatchError, InvalidHashError):
        return None
    return _principal(user) if user else None


def principal_by_id(db: sessionmaker[Session], user_id: int) -> Principal | None:
    with db() as s:
        user = s.get(User, user_id)
        return _principal(user) if user else None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(db: sessionmaker[Session], name: str, label: str = "") -> str:
    """A new API token for user `name`; the token itself is returned once, never stored."""
    token = "cbt_" + secrets.token_urlsafe(32)
    with db.begin() as s:
        user = s.scalar(select(User).where(User.name == name))
        if user is None:
            raise AuthError(f"no user named {name!r}")
        s.add(ApiToken(user_id=user.id, token_sha256=_digest(token), label=label[:100]))
    return token


def principal_by_token(db: sessionmaker[Session], token: str) -> Principal | None:
    """The token's user, or None. Its last use is written at most every `TOUCH_EVERY`, so
    API reads do not each take the database's write lock."""
    digest = _digest(token)
    with db() as s:
        row = s.scalar(select(ApiToken).where(ApiToken.token_sha256 == digest))
        if row is None or not hmac.compare_digest(row.token_sha256, digest):
            return None
        user = s.get(User, row.user_id)
        stale = row.last_used_at is None or _aware(row.last_used_at) < _now() - TOUCH_EVERY
        token_id = row.id
    if stale:
        with db.begin() as s:
            s.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=_now()))
    return _principal(user) if user else None


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(t: datetime) -> datetime:
    """SQLite hands back naive datetimes (stored as UTC)."""
    return t if t.tzinfo else t.replace(tzinfo=UTC)
