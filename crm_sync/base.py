"""CRM adapter interface: deliver one outbox message (a qualified lead, a callback...)."""

from __future__ import annotations

from typing import Any, Protocol


class CrmError(Exception):
    """Delivery failed; `retryable` says whether trying again later can help."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class CrmConfigError(ValueError):
    """The adapter's settings are unusable or unsafe; raised when it is built (node start)."""


class CrmAdapter(Protocol):
    name: str

    async def deliver(self, kind: str, payload: dict[str, Any]) -> None:
        """Deliver or raise CrmError. Must be idempotent on payload["outbox_id"]."""
        ...
