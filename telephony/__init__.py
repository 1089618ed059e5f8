"""Telephony: SIP/RTP media workers behind a small interface (see `telephony.base`).

`WorkerPool` is the real engine (pjsua2 worker processes); `FakeTelephony` is the scripted
in-memory engine for tests (its callee behaviours are `Scenario`s). Both honour `free_slots`
and raise `TelephonyBusyError` from `dial()` when full. Neither import pulls in pjsua2: only the
worker processes do; `telephony.ipc` is the wire between them and the pool.
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
    Disposition,
    Dtmf,
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
    Scenario,
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
    "Disposition",
    "Dtmf",
    "FakeCall",
    "FakeInboundCall",
    "FakeTelephony",
    "InboundCall",
    "PlayoutCleared",
    "PlayoutMark",
    "PoolBusyError",
    "PoolCall",
    "PoolInboundCall",
    "Progress",
    "Scenario",
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
