"""The conversation: YAML scripts, a pure dialogue machine, and one CallSession per live call.

- ``script``: sales scripts (话术) parsed and validated (outcomes and grades from ``core.vocab``)
- ``machine``: ``step(script, DialogState, event) -> (state, actions)``, no I/O, continuations
- ``session``: ``CallSession`` wires a call, the recognizer, the NLU, the machine and the voice
- ``playback``: one handle per robot line (send, interrupt, how much was heard)
- ``timing``: stream time -> wall time, turn latency, the no-input countdown
- ``continuation``: which callee turns continue the last one
- ``results``: ``TurnRecord`` and ``SessionResult``, what a call leaves behind
- ``progress``: waiting for answered / ended call progress

callflow imports only core and the interfaces of telephony, speech and nlu (``base`` modules).
"""
