"""MQTT bus over aiomqtt (Mosquitto, EMQX): events shared by many nodes."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any
from urllib.parse import urlparse

from .base import Message


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

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.__aexit__(None, None, None)

    async def publish(self, topic: str, payload: dict[str, Any]) -> None:
        if self._client is None:
            raise RuntimeError("MqttBus.publish before start()")
        data = json.dumps(payload, ensure_ascii=False, default=str)
        await self._client.publish(f"{self._prefix}/{topic}", data, qos=1)

    async def subscribe(self, pattern: str) -> AsyncGenerator[Message, None]:
        if self._client is None:
            raise RuntimeError("MqttBus.subscribe before start()")
        full = f"{self._prefix}/{pattern}"
        await self._client.subscribe(full, qos=1)
        cut = len(self._prefix) + 1
        async for msg in self._client.messages:
            topic = str(msg.topic)
            if msg.topic.matches(full):
                yield Message(topic[cut:], json.loads(msg.payload))
