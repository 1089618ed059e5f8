"""One vocabulary per concept: what a call achieved, how its line ended, how good a lead is.

These are `StrEnum`s, so they are stored, reported and sent to the CRM as their plain values
(``Outcome.QUALIFIED == "qualified"``) and a value read back from the database compares equal.
"""

from __future__ import annotations

import enum


class Outcome(enum.StrEnum):
    """What the conversation achieved (a script's ending state names one)."""

    QUALIFIED = "qualified"  # interested: a lead for sales (graded)
    CALLBACK = "callback"  # asked to be called later
    DNC = "dnc"  # asked not to be called again
    NOT_INTERESTED = "not_interested"
    WRONG_PERSON = "wrong_person"
    VOICEMAIL = "voicemail"
    NO_RESPONSE = "no_response"  # said nothing useful until the script gave up
    HUMAN_REQUESTED = "human_requested"
    TRANSFERRED = "transferred"  # handed to a person who answered (REFER or a bridged call)
    HUNG_UP = "hung_up"  # hung up before any outcome


class Disposition(enum.StrEnum):
    """How the line ended (the attempt's disposition), whatever was said."""

    COMPLETED = "completed"  # answered, then hung up by either side
    BUSY = "busy"  # 486/600
    NO_ANSWER = "no_answer"  # ring timeout, 408/480
    REJECTED = "rejected"  # 603 decline and other 4xx/5xx/6xx finals
    FAILED = "failed"  # unreachable, transport error, bad URI
    WORKER_LOST = "worker_lost"  # the media worker process died mid-call
    # the trunk refused us (401/407 final, or 403 to our credentials): not the lead's fault,
    # so a dialer releases the claim and counts no attempt
    TRUNK_REJECTED = "trunk_rejected"
    # a machine answered instead of the callee (``callflow.screening``: the early media or the
    # first seconds after the answer), so the robot never pitched; each kind retries its own way
    INVALID_NUMBER = "invalid_number"  # 空号 / 号码不存在 / 已注销: never retried
    POWERED_OFF = "powered_off"  # 已关机
    SUSPENDED = "suspended"  # 已停机 / 暂停服务
    UNREACHABLE = "unreachable"  # 暂时无法接通 / 不在服务区
    BUSY_IN_CALL = "busy_in_call"  # 正在通话中
    VOICEMAIL = "voicemail"  # a voicemail greeting (请在提示音后留言)
    CALL_SCREENING = "call_screening"  # a call-screening assistant or call forwarding
    IVR = "ivr"  # an automated menu (请按1)


class TransferMode(enum.StrEnum):
    """How a call was handed to a person (the attempt's ``transfer_mode``)."""

    REFER = "refer"  # blind transfer: SIP REFER to the callee's side, the robot leaves
    BRIDGE = "bridge"  # a second call from the robot to the agent, bridged with the callee


class Grade(enum.StrEnum):
    """How good a lead is: A best; D not worth a salesperson's time (a script's grading rules
    may give it to any call, ``callflow.grading``)."""

    A = "A"
    B = "B"
    C = "C"
    D = "D"
