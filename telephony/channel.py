"""`Channel`: the single-consumer async queue behind a call's `events()` and `audio()`.

Shared by the real pool and the fake, so both deliver events and frames the same way: in
order, ending after `close()` and a drain, optionally dropping the oldest audio when the
consumer falls behind.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Channel(Generic[T]):
    """Async queue, iterable with ``async for``; iteration ends after `close()` and a drain.

    Meant for one consumer (a call's events or audio); concurrent consumers each get
    different items. With ``maxlen`` the oldest items are dropped when the consumer falls
    behind (`dropped` counts them), so an unread audio stream cannot grow without bound.
    """

    def __init__(self, maxlen: int | None = None) -> None:
        self._items: deque[T] = deque()
        self._maxlen = maxlen
        self._waiters: list[asyncio.Future[None]] = []
        self._closed = False
        self.dropped = 0

    @property
    def closed(self) -> bool:
        return self._closed

    def put(self, item: T) -> None:
        if self._closed:
            return
        if self._maxlen is not None and len(self._items) >= self._maxlen:
            self._items.popleft()
            self.dropped += 1
        self._items.append(item)
        self._wake()

    def close(self) -> None:
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        if not self._waiters:
            return
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def __aiter__(self) -> Channel[T]:
        return self

    async def __anext__(self) -> T:
        while not self._items:
            if self._closed:
                raise StopAsyncIteration
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        return self._items.popleft()

    async def get(self) -> T:
        """The next item; raises `EOFError` once closed and drained."""
        try:
            return await self.__anext__()
        except StopAsyncIteration:
            raise EOFError("channel closed") from None
