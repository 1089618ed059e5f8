"""Clarify instead of guessing: act on an understood reply, confirm a weak one, or ask again.

A wrong action costs more than one short question: a misheard "加个微信" taken as an opt-out
drops a willing lead, a misheard price question sends the pitch astray. So when the evidence
for the caller's intent is weak the robot confirms the likely meaning ("您是想了解价格吗？"),
and when there is hardly any evidence it asks again. ``judge`` is the pure policy; the machine
(``callflow.machine``) applies it with the script's ``clarify_below`` and ``confirm:`` questions.

The defaults are measured with the committed NLU (student + linear ensemble) on the real
held-out split (1,743 replies), as written and with ASR-like noise (``nlu.training.augment``).
Share of replies whose top intent is right, by its confidence:

    confidence   <0.35   0.35-0.45   0.45-0.6   0.6-0.75   0.75-0.9   >=0.9
    clean         0.38     0.45        0.54       0.76       0.92      0.98
    noisy         0.39     0.50        0.53       0.78       0.88      0.97

Below 0.6 a guess is a coin flip; above it three in four or better. With ``threshold`` 0.6 the
wrong-action rate (acting on a wrong intent, per reply) falls from 0.072 to 0.034 clean and from
0.106 to 0.042 noisy, for a confirmation question on 8 % (clean) / 14 % (noisy) of replies;
0.7 would cut it to 0.030 but question one noisy reply in five. Below ``threshold / 2`` (0.3:
the NLU already calls most of those ``other``) a yes/no question would mostly be answered "no":
asking again is shorter. ``margin`` (top probability minus the runner-up, from
``nlu.base.IntentResult.margin`` when the classifier provides it) catches a confident-looking
score that another intent nearly ties; with one softmax it can only bite below ~0.58, but a
combined n-best score may tie higher.

Opt-outs are never delayed: a ``complaint_dnc`` or ``request_human`` that reaches the threshold
is acted on whatever the margin (the rule layer's forced opt-outs score 0.99). A weaker one is
confirmed, never dropped: asking "您是不希望我们再打电话了吗？" respects the caller either way.
"""

from __future__ import annotations

from typing import Final, Literal

Decision = Literal["act", "confirm", "ask_again"]

FALLBACK: Final = "other"  # the NLU's "nothing usable" intent
OPT_OUTS: Final = frozenset({"complaint_dnc", "request_human"})
DEFAULT_THRESHOLD: Final = 0.6
DEFAULT_MARGIN: Final = 0.15
ASK_AGAIN_SHARE: Final = 0.5  # below threshold x this share: too little evidence to confirm


def judge(
    intent: str,
    confidence: float,
    *,
    margin: float | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    margin_threshold: float = DEFAULT_MARGIN,
) -> Decision:
    """What to do with a reply understood as `intent` with `confidence` (0..1).

    ``"act"``: take it as heard. ``"confirm"``: ask whether that is what the caller meant.
    ``"ask_again"``: treat it as unusable (the script's re-prompt path). ``threshold`` 0 turns
    clarification off (everything but ``other`` is acted on); `margin` None means unknown.
    """
    if intent == FALLBACK:
        return "ask_again"
    if threshold <= 0.0:
        return "act"
    if confidence >= threshold:
        if intent in OPT_OUTS or margin is None or margin >= margin_threshold:
            return "act"
        return "confirm"
    if intent in OPT_OUTS:
        return "confirm"
    if confidence < threshold * ASK_AGAIN_SHARE:
        return "ask_again"
    return "confirm"
