"""Telephony: SIP/RTP media workers behind a small interface (see `telephony.base`).

`WorkerPool` is the real engine (pjsua2 worker processes); `FakeTelephony` is the scripted
in-memory engine for tests. Neither import pulls in pjsua2: only the worker processes do.
"""

from telephony.base import (
    FRAME_BYTES,
    FRAME_MS,
    FRAME_SAMPLES,
    SAMPLE_RATE,
    CallEvent,
    CallHandle,
    CallState,
    DialRequest,
    Dtmf,
    EndReason,
    InboundCall,
    PlayoutCleared,
    PlayoutMark,
    Progress,
    Telephony,
    TelephonyBusyError,
)
from telephony.fake import (
    FakeCall,
    FakeInboundCall,
    FakeTelephony,
    Outcome,
    answers,
    busy,
    fails,
    no_answer,
    rejected,
)
from telephony.pool import PoolBusyError, PoolCall, PoolInboundCall, WorkerPool, WorkerStartError

__all__ = [
    "FRAME_BYTES",
    "FRAME_MS",
    "FRAME_SAMPLES",
    "SAMPLE_RATE",
    "CallEvent",
    "CallHandle",
    "CallState",
    "DialRequest",
    "Dtmf",
    "EndReason",
    "FakeCall",
    "FakeInboundCall",
    "FakeTelephony",
    "InboundCall",
    "Outcome",
    "PlayoutCleared",
    "PlayoutMark",
    "PoolBusyError",
    "PoolCall",
    "PoolInboundCall",
    "Progress",
    "Telephony",
    "TelephonyBusyError",
    "WorkerPool",
    "WorkerStartError",
    "answers",
    "busy",
    "fails",
    "no_answer",
    "rejected",
]
