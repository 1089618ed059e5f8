"""Dial pacing: calls per second (token buckets, per node and per trunk) and concurrent calls
per trunk.

Carriers refuse or flag a trunk that starts too many calls a second, and sell a trunk with a
number of channels. The dialer asks a `Pacer` shared by every campaign of the node: before
claiming, how many more calls the trunk may carry (`take`, given back by `give` when the call
is over); before each dial, to wait for its turn (`wait_turn`: one token of the node's bucket
and one of the trunk's).

A bucket hands out reservations in order: each caller is told how long to wait for its token,
so callers are served first come, first served and the rate holds exactly, whatever the
number of campaigns. The clock and the sleep are injectable (tests run on a fake clock).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class TokenBucket:
    """`rate` tokens a second, holding at most `burst`; a rate of 0 is no limit."""

    def __init__(self, rate: float, burst: int | None = None, *, clock: Clock = time.monotonic):
        if rate < 0:
            raise ValueError("a rate must be 0 (no limit) or more")
        self.rate = rate
        self.burst = max(1, burst if burst is not None else math.ceil(rate))
        self._clock = clock
        self._tokens = float(self.burst)
        self._at = clock()

    def reserve(self) -> float:
        """Take one token now (going into debt if none is left): the seconds to wait before
        using it."""
        if self.rate == 0:
            return 0.0
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        self._tokens -= 1
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate


@dataclass(frozen=True, slots=True)
class PacingConfig:
    calls_per_second: float = 0.0  # per node; 0: no limit
    trunk_calls_per_second: float = 0.0  # per trunk; 0: no limit
    trunk_max_concurrent: int = 0  # calls at once per trunk; 0: only the node's limit


class Pacer:
    """The node's pacing, shared by its dialers."""

    def __init__(
        self, cfg: PacingConfig, *, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep
    ) -> None:
        if cfg.trunk_max_concurrent < 0:
            raise ValueError("trunk_max_concurrent must be 0 (no limit) or more")
        self.cfg = cfg
        self._clock = clock
        self._sleep = sleep
        self._node = TokenBucket(cfg.calls_per_second, clock=clock)
        self._trunks: dict[str, TokenBucket] = {}
        self._busy: dict[str, int] = {}  # trunk -> calls taken and not given back

    def free(self, trunk: str) -> int | None:
        """How many more calls `trunk` may carry now; None: no per-trunk limit."""
        limit = self.cfg.trunk_max_concurrent
        return None if limit == 0 else max(0, limit - self._busy.get(trunk, 0))

    def take(self, trunk: str, n: int) -> int:
        """Take up to `n` of the trunk's channels (no waiting); how many were taken."""
        free = self.free(trunk)
        taken = n if free is None else min(n, free)
        self._busy[trunk] = self._busy.get(trunk, 0) + taken
        return taken

    def give(self, trunk: str, n: int = 1) -> None:
        self._busy[trunk] = max(0, self._busy.get(trunk, 0) - n)

    async def wait_turn(self, trunk: str) -> None:
        """Wait until one more call may start, by the node's and the trunk's rates."""
        bucket = self._trunks.get(trunk)
        if bucket is None:
            bucket = self._trunks[trunk] = TokenBucket(
                self.cfg.trunk_calls_per_second, clock=self._clock
            )
        wait = max(self._node.reserve(), bucket.reserve())
        if wait > 0:
            await self._sleep(wait)


UNPACED = PacingConfig()
