"""In-memory CRM for tests: records deliveries, can be told to fail."""

from __future__ import annotations

from typing import Any

from .base import CrmError


class FakeCrm:
    name = "fake"

    def __init__(self, *, fail_times: int = 0, retryable: bool = True) -> None:
        self.delivered: list[tuple[str, dict[str, Any]]] = []
        self._fail_times = fail_times
        self._retryable = retryable

    async def deliver(self, kind: str, payload: dict[str, Any]) -> None:
        if self._fail_times > 0:
            self._fail_times -= 1
            raise CrmError("scripted failure", retryable=self._retryable)
        self.delivered.append((kind, dict(payload)))
