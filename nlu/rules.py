"""A small rule layer that runs before the model, on normalized text.

Explicit opt-outs must never depend on a statistical model: "别再打了", "不要再给我打电话",
"投诉", "骚扰" always give ``complaint_dnc`` (a regulatory matter: the number goes on the DNC
list). Carrier announcements ("您拨打的电话已关机") and voicemail prompts are fixed texts, so
they are matched here as well, and so is an explicit "转人工". Patterns allow the 再/在
homophone that ASR often produces.
"""

from __future__ import annotations

import re
from typing import Final

RULE_CONFIDENCE: Final = 0.99

_AGAIN = "(?:再|在)?"
_ME = "(?:给我|跟我|和我|往我这|给我们)?"

_DNC: Final = re.compile(
    "|".join(
        (
            rf"(?:别|不要|不用|莫|唔好|覅|甭){_AGAIN}{_ME}(?:打(?!折|印|算|开|包|卡|车|字|错)|联系|骚扰)",
            r"(?:以后|今后)(?:别|不要|不准|不许)",
            r"投诉|骚扰|举报|报警|拉黑|黑名单|起诉|告你们|12315|工信部",
            r"(?:删掉|删除|移除|去掉)(?:我的)?(?:号码|电话|手机号)",
            r"(?:把我|我的号码|我的电话)(?:从|的)?.{0,6}(?:删掉|删除|移除|去掉)",
            r"有完没完|烦不烦",
        )
    )
)
# "我不会投诉你的" / "这不是骚扰电话吧" must not opt anyone out.
_DNC_NEGATED: Final = re.compile(r"(?:不会|不是要|没有|没|不想)(?:投诉|举报|骚扰)|不是骚扰")

_VOICEMAIL: Final = re.compile(
    "|".join(
        (
            r"您(?:所)?(?:拨打|呼叫|拨)的(?:电话|用户|号码)",
            r"已关机|暂时无法接通|不在服务区|已停机|是空号|号码不存在|暂停服务|已注销",
            r"(?:提示音|嘀声|哔声|滴声)(?:后|之后)",
            r"语音信箱|语音留言|请留言|留言请按|请稍后再拨|请稍候再拨",
            r"机主(?:的|暂时|现在|正在|已|不方便|无法)",
            r"(?:number|subscriber)youdial|poweroff|leaveamessage|voicemail",
        )
    )
)


# An explicit request for a person ("转人工", "叫个真人来"), as opposed to asking whether the
# caller is one ("你是人工的吗", which is ask_identity).
_HUMAN: Final = re.compile(
    r"(?:转|转接|找|要|叫|换|接|喊|联系|呼叫)(?:到|给我|个|一下|一个|你们的?)?(?:人工|真人|活人)"
)


def match_rule(normalized: str) -> str | None:
    """Return the intent a rule forces for this normalized text, or None.

    Order matters: a carrier announcement is never a person; an opt-out wins over a request
    for a human ("我要投诉，转人工" must still reach the DNC list).
    """
    if not normalized:
        return None
    if _VOICEMAIL.search(normalized):
        return "voicemail"
    if _DNC.search(normalized) and not _DNC_NEGATED.search(normalized):
        return "complaint_dnc"
    if _HUMAN.search(normalized):
        return "request_human"
    return None
