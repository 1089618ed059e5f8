"""MQTT bus over aiomqtt (Mosquitto, EMQX): events shared by many nodes.

A broker that goes away never fails a publisher: `publish` only queues the event (bounded;
the oldest is dropped when full) and one connection task sends the queue, reconnecting with
capped exponential backoff and subscribing again to every pattern after each reconnect. An
event is taken off the queue only once the broker has acknowledged it (QoS 1), so a restart
loses nothing that fits in the queue.

A `will` (topic, payload) is the node's last will: the broker publishes it, retained, when the
connection drops without a goodbye (the node died or lost the network) after 1.5 `keepalive`
periods, so the node's presence reads offline.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import AsyncGenerator
from typing import Any
from urllib.parse import urlparse

from .base import Message
from .memory import InProcessBus

log = logging.getLogger(__name__)

RECONNECT_FIRST_S = 0.5  # the first wait after a lost connection, doubling ...
RECONNECT_MAX_S = 30.0  # ... up to this
START_WAIT_S = 5.0  # start() waits this long for the first connection, then goes on queueing
QUEUE_MAX = 10_000  # events kept while the broker is away
KEEPALIVE_S = 10  # the broker declares a silent client gone (its last will) after 1.5 of these


def _aiomqtt() -> Any:
    try:
        import aiomqtt
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("the MQTT bus needs aiomqtt: pip install '.[mqtt]'") from exc
    return aiomqtt


class MqttBus:
    """`url` is mqtt://[user:pass@]host[:port][/prefix]."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "callbot",
        client_id: str | None = None,
        will: tuple[str, dict[str, Any]] | None = None,
        keepalive_s: int = KEEPALIVE_S,
    ) -> None:
        parsed = urlparse(url)
        if parsed.scheme not in ("mqtt", "tcp"):
            raise ValueError(f"MQTT_URL must start with mqtt://, got scheme {parsed.scheme!r}")
        if not parsed.hostname:
            raise ValueError("MQTT_URL has no host")
        self._host = parsed.hostname
        self._port = parsed.port or 1883
        self._user = parsed.username
        self._password = parsed.password
        self._prefix = parsed.path.strip("/") or prefix
        self._client_id = client_id
        self._will = None if will is None else (f"{self._prefix}/{will[0]}", json.dumps(will[1]))
        self._keepalive_s = keepalive_s
        self._client: Any = None  # the live connection's client, None while disconnected
        self._runner: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        # (full topic, JSON, retain) not yet acknowledged by the broker
        self._outbox: deque[tuple[str, str, bool]] = deque()
        self._wake = asyncio.Event()
        self._patterns: list[str] = []  # full topic patterns, subscribed again on reconnect
        self._dropped = 0
        self._served = False  # the last connection got up: the backoff starts over after it
        self._local = InProcessBus()  # fans each received message out to the subscriptions

    async def start(self) -> None:
        """Start the connection task; wait up to START_WAIT_S for the broker. A broker that is
        not there yet is logged and retried in the background (events queue meanwhile)."""
        self._runner = asyncio.create_task(self._run(), name="bus.mqtt.connection")
        try:
            await asyncio.wait_for(self._connected.wait(), START_WAIT_S)
        except TimeoutError:
            log.warning("MQTT broker not reachable yet; events are queued until it is")

    @property
    def connected(self) -> bool:
        """True while a connection to the broker is up."""
        return self._connected.is_set()

    async def close(self) -> None:
        """Send what is queued (briefly, while connected), then disconnect."""
        if self._connected.is_set() and self._outbox:
            try:
                async with asyncio.timeout(2.0):
                    while self._outbox and self._connected.is_set():  # noqa: ASYNC110
                        await asyncio.sleep(0.02)
            except TimeoutError:
                pass
        if self._outbox:
            log.warning("MQTT bus closed with %d events unsent", len(self._outbox))
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
            self._runner = None
        await self._local.close()

    async def publish(self, topic: str, payload: dict[str, Any], *, retain: bool = False) -> None:
        """Queue the event for the broker (at least once, QoS 1); never waits for it.
        `retain`: the broker keeps it as the topic's last message (presence)."""
        if self._runner is None:
            raise RuntimeError("MqttBus.publish before start()")
        if len(self._outbox) >= QUEUE_MAX:
            self._outbox.popleft()
            self._dropped += 1
            if self._dropped in (1, 100) or self._dropped % 1000 == 0:
                log.warning("MQTT queue full: %d oldest events dropped", self._dropped)
        data = json.dumps(payload, ensure_ascii=False, default=str)
        self._outbox.append((f"{self._prefix}/{topic}", data, retain))
        self._wake.set()

    async def subscribe(self, pattern: str) -> AsyncGenerator[Message, None]:
        """Each subscription gets its own queue (local fan-out); one client serves them all,
        and subscribes again after every reconnect."""
        if self._runner is None:
            raise RuntimeError("MqttBus.subscribe before start()")
        full = f"{self._prefix}/{pattern}"
        self._patterns.append(full)
        if self._client is not None:
            await self._client.subscribe(full, qos=1)
        async for msg in self._local.subscribe(pattern):
            yield msg

    async def _run(self) -> None:
        """Connect, serve, and reconnect after any loss, with capped exponential backoff (which
        starts over once a connection was up)."""
        aiomqtt = _aiomqtt()
        delay = RECONNECT_FIRST_S
        while True:
            self._served = False
            error = "closed"
            try:
                async with aiomqtt.Client(
                    self._host,
                    self._port,
                    username=self._user,
                    password=self._password,
                    identifier=self._client_id,
                    keepalive=self._keepalive_s,
                    will=None if self._will is None else aiomqtt.Will(*self._will, 1, True),
                ) as client:
                    await self._serve(client)
            except* Exception as group:  # never the runner's end: log, wait, connect again
                error = type(group.exceptions[0]).__name__
            finally:
                self._client = None
                self._connected.clear()
            if self._served:
                delay = RECONNECT_FIRST_S
            log.warning("MQTT connection lost (%s); reconnecting in %.1f s", error, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_S)

    async def _serve(self, client: Any) -> None:
        for full in self._patterns:
            await client.subscribe(full, qos=1)
        self._client = client
        self._connected.set()
        self._served = True
        log.info("MQTT connected")
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._send(client), name="bus.mqtt.send")
            tg.create_task(self._dispatch(client), name="bus.mqtt.dispatch")

    async def _send(self, client: Any) -> None:
        """Send the queue in order; an event leaves it only once the broker has it."""
        while True:
            while self._outbox:
                head = self._outbox[0]
                topic, data, retain = head
                await client.publish(topic, data, qos=1, retain=retain)
                if self._outbox and self._outbox[0] is head:
                    self._outbox.popleft()
            self._wake.clear()
            if not self._outbox:
                await self._wake.wait()

    async def _dispatch(self, client: Any) -> None:
        cut = len(self._prefix) + 1
        async for msg in client.messages:
            topic = str(msg.topic)[cut:]
            try:
                payload = json.loads(msg.payload)
            except (TypeError, ValueError):
                log.warning("dropping a non-JSON bus message", extra={"topic": topic})
                continue
            await self._local.publish(topic, payload)
