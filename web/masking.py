"""Phone numbers as each role may see them: viewers get 138****0001, others the number."""

from __future__ import annotations

from typing import Protocol


class _Viewer(Protocol):
    @property
    def sees_numbers(self) -> bool: ...


def mask(phone: str) -> str:
    """Keep a mainland-style 3 + 4 digits (after a +86), star the middle; short numbers keep
    their last two digits only."""
    prefix = "+86" if phone.startswith("+86") else ""
    rest = phone[len(prefix) :]
    if len(rest) >= 8:
        return f"{prefix}{rest[:3]}****{rest[-4:]}"
    return prefix + "*" * max(len(rest) - 2, 0) + rest[-2:]


def shown(phone: str | None, user: _Viewer | None) -> str:
    if not phone:
        return ""
    return phone if user is not None and user.sees_numbers else mask(phone)
