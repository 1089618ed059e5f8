"""Does a transcript read like a finished turn? The text side of adaptive endpointing.

A fixed endpoint silence is a bad trade on the phone: 700 ms keeps people from being cut off in
mid-thought but makes every short reply ("多少钱？") wait 0.7 s for an answer; 300 ms answers fast
but interrupts "我想问一下那个……". The recognizer stream (``speech.asr.adapter``) ends the turn
early, after a short silence, only when the transcript it already decoded passes this check;
otherwise it waits for the full endpoint silence.

Not complete: nothing recognized, a trailing ellipsis (Whisper's own "cut off here" mark), or an
ending that asks for more: a conjunction (因为, 但是, 然后 ...), a filler or hesitation (那个,
嗯, 呃 ...), or a clause opener (我想, 如果, 比如 ...). Pure string work, microseconds.
"""

from __future__ import annotations

import re
from typing import Final

# endings after which a speaker almost always goes on (longest first is not needed: any match)
CONTINUATION_ENDINGS: Final = (
    # conjunctions and connectives
    "因为", "但是", "可是", "不过", "然后", "所以", "而且", "还有", "或者", "还是", "以及",
    "如果", "要是", "假如", "虽然", "就是说", "也就是", "另外", "再说", "比如", "比方说", "包括",
    "除了", "和", "跟", "与", "并且", "以后再", "等到",
    # fillers and hesitations
    "那个", "这个", "就是", "那么", "嗯", "呃", "额", "唔", "哦那", "怎么说", "怎么说呢",
    # clause openers: the object is still to come
    "我想", "我觉得", "我是说", "我的意思是", "你们那个", "我们这边", "我们", "你们", "我要",
    "我看", "主要是", "关键是", "问题是", "的话", "先", "把", "给", "对于", "关于",
)  # fmt: skip
_TRAILING_PUNCT = re.compile(r"[\s,，、;；:：\-—~～]+$")
_ELLIPSIS = re.compile(r"(\.{2,}|…+|。{2,})\s*$")
_END_PUNCT = "。.!！?？"


def looks_complete(text: str) -> bool:
    """True when `text` reads like the end of a turn (see the module doc)."""
    stripped = text.strip()
    if not stripped or _ELLIPSIS.search(stripped):
        return False
    body = _TRAILING_PUNCT.sub("", stripped)
    if not body:
        return False
    if body[-1] in _END_PUNCT:
        body = body.rstrip(_END_PUNCT)
        if not body:
            return False
    if stripped.rstrip()[-1] in ",，、;；:：":  # the decoder itself expected more
        return False
    return not body.endswith(CONTINUATION_ENDINGS)
