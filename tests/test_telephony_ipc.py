"""Brain <-> worker framing, the delivery channel, and the SIP code table (no pjsua2)."""

from __future__ import annotations

import asyncio
import io

import pytest

from telephony import ipc
from telephony.base import EndReason


def test_roundtrip_mixed_messages_fed_byte_by_byte() -> None:
    pcm = bytes(range(256)) + bytes(64)
    wire = (
        ipc.encode_control({"op": "dial", "uri": "sip:x@y"}, 7)
        + ipc.encode_audio(7, pcm)
        + ipc.encode_audio(ipc.INBOUND_BASE, b"")
        + ipc.encode_control({"ev": "ready", "sip_port": 5070})
    )
    dec = ipc.Decoder()
    out: list[ipc.Message] = []
    for i in range(len(wire)):
        out += dec.feed(wire[i : i + 1])
    assert out == [
        ipc.Control(7, {"op": "dial", "uri": "sip:x@y"}),
        ipc.Audio(7, pcm),
        ipc.Audio(ipc.INBOUND_BASE, b""),
        ipc.Control(0, {"ev": "ready", "sip_port": 5070}),
    ]
    assert dec.feed(wire) == out  # and all at once


def test_blocking_reader_matches_decoder() -> None:
    wire = ipc.encode_audio(3, b"\x01\x02" * 160) + ipc.encode_control({"op": "clear"}, 3)
    stream = io.BytesIO(wire)
    assert ipc.read_message(stream) == ipc.Audio(3, b"\x01\x02" * 160)
    assert ipc.read_message(stream) == ipc.Control(3, {"op": "clear"})
    assert ipc.read_message(stream) is None


def test_corrupt_streams_raise_protocol_error() -> None:
    with pytest.raises(ipc.ProtocolError):
        ipc.Decoder().feed(ipc.HEADER.pack(2, 9, 0) + b"{}")  # unknown kind
    with pytest.raises(ipc.ProtocolError):
        ipc.Decoder().feed(ipc.HEADER.pack(ipc.MAX_PAYLOAD + 1, 1, 0))
    with pytest.raises(ipc.ProtocolError):
        ipc.read_message(io.BytesIO(ipc.encode_audio(1, b"abcd")[:-1]))
    with pytest.raises(ipc.ProtocolError):
        ipc.Decoder().feed(ipc.HEADER.pack(2, ipc.KIND_CONTROL, 0) + b"[]")


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (486, EndReason.BUSY),
        (600, EndReason.BUSY),
        (408, EndReason.NO_ANSWER),
        (480, EndReason.NO_ANSWER),
        (603, EndReason.REJECTED),
        (404, EndReason.REJECTED),
        (503, EndReason.REJECTED),
    ],
)
def test_end_reason_for_code(code: int, reason: EndReason) -> None:
    assert ipc.end_reason_for_code(code) is reason


async def test_channel_delivers_in_order_then_ends() -> None:
    ch: ipc.Channel[int] = ipc.Channel()

    async def produce() -> None:
        for i in range(5):
            ch.put(i)
            await asyncio.sleep(0)
        ch.close()
        ch.put(99)  # ignored after close

    task = asyncio.create_task(produce(), name="test.produce")
    assert [i async for i in ch] == [0, 1, 2, 3, 4]
    await task
    with pytest.raises(EOFError):
        await ch.get()


async def test_channel_drops_oldest_beyond_maxlen() -> None:
    ch: ipc.Channel[int] = ipc.Channel(maxlen=3)
    for i in range(5):
        ch.put(i)
    ch.close()
    assert [i async for i in ch] == [2, 3, 4]
    assert ch.dropped == 2


async def test_channel_serves_concurrent_waiters() -> None:
    ch: ipc.Channel[int] = ipc.Channel()
    getters = [asyncio.create_task(ch.get(), name=f"test.get{i}") for i in range(2)]
    await asyncio.sleep(0)
    ch.put(1)
    ch.put(2)
    assert sorted(await asyncio.gather(*getters)) == [1, 2]
