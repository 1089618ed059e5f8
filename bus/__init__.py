"""Event bus: MQTT for many nodes, in-process when no broker is configured."""

from typing import Any

from .base import Bus, Message, topic_matches
from .memory import InProcessBus


def make_bus(
    mqtt_url: str,
    *,
    prefix: str = "callbot",
    will: tuple[str, dict[str, Any]] | None = None,
    client_id: str | None = None,
) -> Bus:
    """The MQTT bus at `mqtt_url` (topics under `prefix`, unless the URL's path names one), or
    the in-process bus when `mqtt_url` is empty. `will`: (topic, payload) the broker publishes,
    retained, if the connection dies. aiomqtt is imported only for MQTT."""
    if not mqtt_url:
        return InProcessBus()
    from .mqtt import MqttBus

    return MqttBus(mqtt_url, prefix=prefix, will=will, client_id=client_id)


__all__ = ["Bus", "InProcessBus", "Message", "make_bus", "topic_matches"]
