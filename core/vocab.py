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


class Grade(enum.StrEnum):
    """How good a qualified lead is: A best."""

    A = "A"
    B = "B"
    C = "C"
