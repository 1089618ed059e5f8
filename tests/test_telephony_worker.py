"""Worker internals that need no SIP peer: playout buffer, disposition rules, parsing."""

from __future__ import annotations

import wave
from pathlib import Path

import pytest

from core.audio import FRAME_BYTES
from core.vocab import Disposition
from telephony.media import Playout, bare_uri, classify_end, disposition_for_code, request_user


def test_playout_pads_partial_frames_and_reports_marks() -> None:
    p = Playout()
    assert p.pull() == (None, ())
    p.push(b"\x01\x00" * 200)
    assert p.pull() == (None, ())  # not answered yet: nothing plays into early media
    p.clear()
    p.live = True
    assert p.mark("empty") is True  # nothing queued: reached at once
    p.push(b"\x01\x00" * 200)  # 400 bytes: one frame and a bit
    assert p.mark("m1") is False
    data, marks = p.pull()
    assert data == b"\x01\x00" * 160 and marks == ()
    data, marks = p.pull()
    assert data is not None and len(data) == FRAME_BYTES
    assert data[:80] == b"\x01\x00" * 40 and data[80:] == bytes(FRAME_BYTES - 80)
    assert marks == ("m1",)
    assert p.pull() == (None, ())


def test_playout_clear_drops_audio_and_pending_marks() -> None:
    p = Playout()
    p.live = True
    p.push(bytes(16000))  # 1 s
    p.mark("after")
    p.pull()
    assert p.clear() == 16000 - FRAME_BYTES
    assert p.pull() == (None, ())
    assert p.mark("next") is True  # the dropped mark never fires; new ones work


def _end(**kw: object) -> tuple[Disposition, str | None]:
    base: dict[str, object] = {
        "outbound": True,
        "answered": False,
        "local_hangup": False,
        "ring_timeout": False,
        "got_response": True,
        "remote_final": None,
        "code": 0,
    }
    base.update(kw)
    return classify_end(**base)  # type: ignore[arg-type]


def test_classify_end() -> None:
    assert _end(answered=True) == (Disposition.COMPLETED, "remote")
    assert _end(answered=True, local_hangup=True) == (Disposition.COMPLETED, "local")
    assert _end(remote_final=486, code=486) == (Disposition.BUSY, "remote")
    assert _end(remote_final=480, code=480) == (Disposition.NO_ANSWER, "remote")
    assert _end(remote_final=603, code=603) == (Disposition.REJECTED, "remote")
    assert _end(ring_timeout=True, local_hangup=True) == (Disposition.NO_ANSWER, "local")
    no_reply = _end(ring_timeout=True, local_hangup=True, got_response=False)
    assert no_reply == (Disposition.FAILED, "local")
    assert _end(local_hangup=True, remote_final=487) == (Disposition.NO_ANSWER, "local")
    assert _end(got_response=False, code=408) == (Disposition.FAILED, None)  # timer B
    assert _end(outbound=False, local_hangup=True, code=486) == (Disposition.BUSY, "local")
    assert _end(outbound=False, code=487) == (Disposition.NO_ANSWER, "remote")


def test_classify_end_tells_a_trunk_refusal_from_the_callee() -> None:
    refused = (Disposition.TRUNK_REJECTED, "remote")
    assert _end(remote_final=407, code=407, challenged=True) == refused  # wrong password
    assert _end(remote_final=401, code=401) == refused  # challenged, no credentials to give
    assert _end(remote_final=403, code=403, challenged=True) == refused  # refused credentials
    assert _end(remote_final=403, code=403) == (Disposition.REJECTED, "remote")  # a callee's
    assert _end(remote_final=486, code=486, challenged=True) == (Disposition.BUSY, "remote")
    assert _end(answered=True, challenged=True) == (Disposition.COMPLETED, "remote")


@pytest.mark.parametrize(
    ("code", "disposition"),
    [
        (486, Disposition.BUSY),
        (600, Disposition.BUSY),
        (408, Disposition.NO_ANSWER),
        (480, Disposition.NO_ANSWER),
        (603, Disposition.REJECTED),
        (404, Disposition.REJECTED),
        (503, Disposition.REJECTED),
        (403, Disposition.REJECTED),
        (401, Disposition.TRUNK_REJECTED),
        (407, Disposition.TRUNK_REJECTED),
    ],
)
def test_disposition_for_code(code: int, disposition: Disposition) -> None:
    assert disposition_for_code(code) is disposition


def test_sip_parsing_helpers() -> None:
    msg = "INVITE sip:13800000001@127.0.0.1:5070;transport=udp SIP/2.0\r\nVia: x\r\n"
    assert request_user(msg) == "13800000001"
    assert request_user("INVITE tel:+8613800000001 SIP/2.0\r\n") == "+8613800000001"
    assert request_user("INVITE sip:127.0.0.1 SIP/2.0\r\n") == ""
    assert bare_uri('"Robot" <sip:robot@127.0.0.1:5060>;tag=abc') == "sip:robot@127.0.0.1:5060"
    assert bare_uri("sip:robot@127.0.0.1;tag=abc") == "sip:robot@127.0.0.1"


def test_wav_closed_tells_a_finished_recording_from_one_being_written(tmp_path: Path) -> None:
    pytest.importorskip("pjsua2")
    from telephony.worker import wav_closed

    done = tmp_path / "done.wav"
    with wave.open(str(done), "wb") as w:  # what a destroyed recorder leaves: sizes filled in
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(bytes(3200))
    assert wav_closed(str(done))
    writing = tmp_path / "writing.wav"  # a live recorder's header: RIFF size still 0
    data = bytearray(done.read_bytes())
    data[4:8] = bytes(4)
    writing.write_bytes(bytes(data))
    assert not wav_closed(str(writing))
    writing.write_bytes(b"RIF")  # the header not even written yet
    assert not wav_closed(str(writing))
    assert wav_closed(str(tmp_path / "never-started.wav"))  # nothing to wait for
