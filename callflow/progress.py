"""Call progress as a session waits for it: answered (or never), then ended."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from telephony.base import CallEvent, CallHandle, CallState, Progress


async def wait_answered(events: AsyncIterator[CallEvent]) -> Progress | None:
    """The ANSWERED or ENDED progress event, whichever comes first (None: events ran out)."""
    async for ev in events:
        if isinstance(ev, Progress) and ev.state in (CallState.ANSWERED, CallState.ENDED):
            return ev
    return None


async def wait_ended(
    events: AsyncIterator[CallEvent], call: CallHandle, timeout_s: float = 10.0
) -> Progress | None:
    """The ENDED event, waiting up to `timeout_s` (then whatever the call knows)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout_s):
            async for ev in events:
                if isinstance(ev, Progress) and ev.state is CallState.ENDED:
                    return ev
    return call.ended
