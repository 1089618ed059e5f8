"""MQTT bus over aiomqtt (Mosquitto, EMQX): events shared by many nodes."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator
from typing import Any
from urllib.parse import urlparse

from .base import Message
from .memory import InProcessBus

log = logging.getLogger(__name__)


def _aiomqtt() -> Any:
    try:
        import aiomqtt
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("the MQTT bus needs aiomqtt: pip install '.[mqtt]'") from exc
    return aiomqtt


class MqttBus:
    """`url` is mqtt://[user:pass@]host[:port][/prefix]."""

    def __init__(self, url: str, *, prefix: str = "callbot", client_id: str | None = None) -> None:
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
        self._client: Any = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._local = InProcessBus()  # fans each received message out to the subscriptions

    async def start(self) -> None:
        aiomqtt = _aiomqtt()
        self._client = aiomqtt.Client(
            self._host,
            self._port,
            username=self._user,
            password=self._password,
            identifier=self._client_id,
        )
        await self._client.__aenter__()
        self._dispatcher = asyncio.create_task(self._dispatch(), name="bus.mqtt.dispatch")

    async def close(self) -> None:
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            await asyncio.gather(self._dispatcher, return_exceptions=True)
            self._dispatcher = None
        await self._local.close()
        if self._client is not None:
            client, self._client = self._client, None
            await client.__aexit__(None, None, None)

    async def publish(self, topic: str, payload: dict[str, Any]) -> None:
        if self._client is None:
            raise RuntimeError("MqttBus.publish before start()")
        data = json.dumps(payload, ensure_ascii=False, default=str)
        await self._client.publish(f"{self._prefix}/{topic}", data, qos=1)

    async def subscribe(self, pattern: str) -> AsyncGenerator[Message, None]:
        """Each subscription gets its own queue (local fan-out); one client serves them all."""
        if self._client is None:
            raise RuntimeError("MqttBus.subscribe before start()")
        await self._client.subscribe(f"{self._prefix}/{pattern}", qos=1)
        async for msg in self._local.subscribe(pattern):
            yield msg

    async def _dispatch(self) -> None:
        cut = len(self._prefix) + 1
        async for msg in self._client.messages:
            topic = str(msg.topic)[cut:]
            try:
                payload = json.loads(msg.payload)
            except (TypeError, ValueError):
                log.warning("dropping a non-JSON bus message", extra={"topic": topic})
                continue
            await self._local.publish(topic, payload)
