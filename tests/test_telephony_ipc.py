"""Brain <-> worker framing, every typed control message, and the delivery channel (no
pjsua2)."""

from __future__ import annotations

import asyncio
import io
import json
from typing import get_args

import pytest

from core.vocab import Disposition
from telephony import ipc
from telephony.base import CallState
from telephony.channel import Channel

EVERY_MESSAGE: list[ipc.Message] = [
    ipc.Dial("sip:x@y"),
    ipc.Dial("sip:x@y", "user", "secret", 12.5, {"X-Campaign": "c1"}),
    ipc.Dial("sip:x@y", from_user="02150001111"),
    ipc.Hangup(),
    ipc.Answer(),
    ipc.Reject(),
    ipc.Reject(603),
    ipc.Mark("turn-3"),
    ipc.Clear(),
    ipc.Pause(),
    ipc.Resume(),
    ipc.Cue("say2"),
    ipc.SendDtmf("1#"),
    ipc.Answer(accept_refer=True),
    ipc.EarlyMedia(),
    ipc.Dial("sip:x@y", record_dir="/var/recordings/2026-12-01/7-ab12cd34"),
    ipc.Transfer("sip:8001@10.0.0.1"),
    ipc.Transfer("sip:8001@10.0.0.1", "bridge"),
    ipc.Ping(41),
    ipc.Shutdown(),
    ipc.Ready(sip_port=5070, max_calls=4, pid=1234, fast_frames=True),
    ipc.Pong(41),
    ipc.CallProgress(CallState.RINGING, 180, "Ringing"),
    ipc.CallProgress(CallState.ANSWERED, 200, "OK"),
    ipc.Ended(486, "Busy Here", Disposition.BUSY, "remote"),
    ipc.Ended(None, "media worker exited", Disposition.WORKER_LOST, None),
    ipc.Ended(407, "Proxy Authentication Required", Disposition.TRUNK_REJECTED, "remote"),
    ipc.Registration(200, "OK", True),
    ipc.Registration(401, "Unauthorized", False),
    ipc.Incoming("13800000001", "sip:caller@127.0.0.1"),
    ipc.MarkDone("turn-3"),
    ipc.Cleared(1180),
    ipc.Cleared(40, 1234.5),
    ipc.Paused(2200, 1234.56),
    ipc.Started("say2", 99.25),
    ipc.DtmfReceived("5"),
    ipc.TransferStatus("refer", 200, True),
    ipc.TransferStatus("bridge", 486, False),
]


def test_every_message_class_is_covered() -> None:
    classes = {type(m) for m in EVERY_MESSAGE}
    assert classes == set(get_args(ipc.Command)) | set(get_args(ipc.Event))


@pytest.mark.parametrize("msg", EVERY_MESSAGE, ids=lambda m: f"{m.TAG}-{m.KIND}")
def test_control_message_round_trip(msg: ipc.Message) -> None:
    wire = ipc.encode(msg, 7)
    decoded = ipc.decode(wire)
    assert decoded == ipc.Control(7, msg)
    assert isinstance(decoded, ipc.Control) and type(decoded.msg) is type(msg)
    assert ipc.Decoder().feed(wire) == [decoded]
    assert ipc.read_message(io.BytesIO(wire)) == decoded


def test_enum_fields_come_back_as_enums() -> None:
    match ipc.decode(ipc.encode(ipc.Ended(603, "Decline", Disposition.REJECTED, "remote"))):
        case ipc.Control(0, ipc.Ended(disposition=disposition)):
            assert disposition is Disposition.REJECTED
        case other:
            pytest.fail(f"decoded {other}")
    match ipc.decode(ipc.encode(ipc.CallProgress(CallState.RINGING, 180, "Ringing"))):
        case ipc.Control(0, ipc.CallProgress(state=state)):
            assert state is CallState.RINGING
        case other:
            pytest.fail(f"decoded {other}")


def _control(body: object, call: int = 0) -> bytes:
    payload = json.dumps(body).encode()
    return ipc.HEADER.pack(len(payload), ipc.KIND_CONTROL, call) + payload


@pytest.mark.parametrize(
    "body",
    [
        {"op": "teleport"},  # unknown command
        {"ev": "dial", "uri": "sip:x@y"},  # a command's kind under the event tag
        {"ev": ["ready"]},  # a kind that is not a string
        {"call": 1},  # neither tag
        {"op": "mark"},  # a required field missing
        {"op": "mark", "name": 3},  # a field of the wrong type
        {"op": "ping", "seq": True},  # a bool is not an int
        {"op": "reject", "code": 486, "why": "x"},  # an unknown field
        {"ev": "ended", "code": 1, "reason": "", "disposition": "gone", "hangup_by": None},
        {"op": "dial", "uri": "sip:x@y", "headers": {"X-N": 1}},
        [],  # not an object
    ],
)
def test_bad_control_messages_raise_protocol_error(body: object) -> None:
    with pytest.raises(ipc.ProtocolError):
        ipc.decode(_control(body))
    with pytest.raises(ipc.ProtocolError):
        ipc.Decoder().feed(_control(body))


def test_encode_rejects_a_mistyped_field_at_the_sender() -> None:
    with pytest.raises(TypeError, match="Mark.name"):
        ipc.encode(ipc.Mark(3))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="CallProgress.state"):
        ipc.encode(ipc.CallProgress("early", 183, ""))  # type: ignore[arg-type]


def test_roundtrip_mixed_messages_fed_byte_by_byte() -> None:
    pcm = bytes(range(256)) + bytes(64)
    wire = (
        ipc.encode(ipc.Dial("sip:x@y"), 7)
        + ipc.encode_audio(7, pcm)
        + ipc.encode_audio(ipc.INBOUND_BASE, b"")
        + ipc.encode(ipc.Ready(5070, 4, 99, False))
    )
    dec = ipc.Decoder()
    out: list[ipc.Packet] = []
    for i in range(len(wire)):
        out += dec.feed(wire[i : i + 1])
    assert out == [
        ipc.Control(7, ipc.Dial("sip:x@y")),
        ipc.Audio(7, pcm),
        ipc.Audio(ipc.INBOUND_BASE, b""),
        ipc.Control(0, ipc.Ready(5070, 4, 99, False)),
    ]
    assert dec.feed(wire) == out  # and all at once


def test_audio_frames_are_header_plus_raw_pcm() -> None:
    pcm = b"\x01\x02" * 160
    wire = ipc.encode_audio(3, pcm)
    assert wire == ipc.HEADER.pack(len(pcm), ipc.KIND_AUDIO, 3) + pcm
    assert ipc.HEADER.size == 9
    assert ipc.decode(wire) == ipc.Audio(3, pcm)


def test_blocking_reader_matches_decoder() -> None:
    wire = ipc.encode_audio(3, b"\x01\x02" * 160) + ipc.encode(ipc.Clear(), 3)
    stream = io.BytesIO(wire)
    assert ipc.read_message(stream) == ipc.Audio(3, b"\x01\x02" * 160)
    assert ipc.read_message(stream) == ipc.Control(3, ipc.Clear())
    assert ipc.read_message(stream) is None


def test_corrupt_streams_raise_protocol_error() -> None:
    with pytest.raises(ipc.ProtocolError):
        ipc.Decoder().feed(ipc.HEADER.pack(2, 9, 0) + b"{}")  # unknown kind
    with pytest.raises(ipc.ProtocolError):
        ipc.Decoder().feed(ipc.HEADER.pack(ipc.MAX_PAYLOAD + 1, 1, 0))
    with pytest.raises(ipc.ProtocolError):
        ipc.read_message(io.BytesIO(ipc.encode_audio(1, b"abcd")[:-1]))
    with pytest.raises(ipc.ProtocolError):
        ipc.decode(ipc.encode_audio(1, b"abcd")[:-1])
    with pytest.raises(ipc.ProtocolError):
        ipc.Decoder().feed(ipc.HEADER.pack(3, ipc.KIND_CONTROL, 0) + b'{"o')  # not JSON


async def test_channel_delivers_in_order_then_ends() -> None:
    ch: Channel[int] = Channel()

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
    ch: Channel[int] = Channel(maxlen=3)
    for i in range(5):
        ch.put(i)
    ch.close()
    assert [i async for i in ch] == [2, 3, 4]
    assert ch.dropped == 2


async def test_channel_serves_concurrent_waiters() -> None:
    ch: Channel[int] = Channel()
    getters = [asyncio.create_task(ch.get(), name=f"test.get{i}") for i in range(2)]
    await asyncio.sleep(0)
    ch.put(1)
    ch.put(2)
    assert sorted(await asyncio.gather(*getters)) == [1, 2]
