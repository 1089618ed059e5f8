"""Mapping from the dataset's 92 fine labels to the product taxonomy (``nlu.base.INTENTS``).

The source is the ``telemarketing_intent_cn`` subset of qgyd2021/few_shot_intent_sft
(Apache-2.0). Its labels come from a debt-collection / chatbot setting and are noisy; a label is
mapped to an intent only where the *meaning in a sales call* matches. Every label in the data is
listed here, mapped to an intent or explicitly dropped (``DROP``); ``tests/test_nlu_dataset.py``
checks that none is missing.

Three kinds of decisions:
- a product intent: the label means the same thing on a sales call;
- ``other``: utterances a callee really says on a call that need no intent of their own
  (greetings, thanks, laughter, insults, "are you listening?") -- they teach the model what
  "nothing actionable" looks like;
- ``DROP``: content that is not about the call (political names, people, places, numbers) or
  debt-collection specifics that would blur a product intent (e.g. "已经还了" would pull
  towards already_have, bare times towards busy_callback).
"""

from __future__ import annotations

from typing import Final

DROP: Final = None

LABEL_TO_INTENT: Final[dict[str, str | None]] = {
    # --- affirm: yes / go on / interested -------------------------------------------------
    "肯定(好的)": "affirm",
    "肯定(是的)": "affirm",
    "肯定(嗯嗯)": "affirm",
    "肯定(可以)": "affirm",
    "肯定(正确)": "affirm",
    "肯定(没问题)": "affirm",
    "肯定(知道了)": "affirm",  # "收到/知道了": acknowledgement, the script goes on
    "肯定(有)": "affirm",
    "肯定(好了)": "affirm",
    "肯定(需要)": "affirm",
    "肯定答复": "affirm",
    "请讲": "affirm",  # "你说/然后呢": go on
    # --- deny: no / not interested --------------------------------------------------------
    "否定答复": "deny",
    "否定(不需要)": "deny",
    "否定(没兴趣)": "deny",
    "否定(不用了)": "deny",
    "否定(不想要)": "deny",
    "否定(不可以)": "deny",
    "否定(取消)": "deny",  # "算了/放弃"
    "否定(没有)": "deny",
    "否定(不是)": "deny",
    # --- ask_price ------------------------------------------------------------------------
    "查收费方式": "ask_price",  # fees, charges, "免费吗"
    "疑问(数值)": "ask_price",  # mostly "多少钱/要付多少"
    # --- ask_detail -------------------------------------------------------------------------
    "查详细信息": "ask_detail",  # "介绍一下/具体点"
    "查操作流程": "ask_detail",  # "怎么办理/怎么使用": how it works
    # --- ask_discount / price_objection ---------------------------------------------------
    "查优惠政策": "ask_discount",
    "价格太高": "price_objection",
    "资金困难": "price_objection",  # "没钱/预算不足/资金紧张": the budget objection
    # --- busy_callback --------------------------------------------------------------------
    "用户正忙": "busy_callback",
    "改天再谈": "busy_callback",  # "下次再说/晚点再打"
    "否定(没时间)": "busy_callback",
    "否定(不方便)": "busy_callback",  # "现在不方便接电话"
    # --- request_info ---------------------------------------------------------------------
    "查联系方式": "request_info",  # "加个微信/你们电话多少"
    # --- ask_identity: who is calling, which company, why me, robot? -----------------------
    "查自我介绍": "ask_identity",
    "查公司介绍": "ask_identity",
    "是否机器人": "ask_identity",
    "号码来源": "ask_identity",
    "质疑隐私安全": "ask_identity",  # "从哪弄到我信息"
    "质疑来电号码": "ask_identity",  # "为什么用私人号码打": who is really calling
    "问意图": "ask_identity",  # "找我什么事/您是哪里": answered by introducing the call
    "疑问(地址)": "ask_identity",  # "你们公司在哪": where the caller is from
    # --- already_have -----------------------------------------------------------------------
    "已经购买": "already_have",
    # --- complaint_dnc --------------------------------------------------------------------
    "骚扰电话": "complaint_dnc",
    "投诉警告": "complaint_dnc",
    # --- request_human --------------------------------------------------------------------
    "转人工客服": "request_human",
    # --- repeat -----------------------------------------------------------------------------
    "要求复述": "repeat",
    "重复一次": "repeat",
    "听不清楚": "repeat",
    "未能理解": "repeat",  # "没听懂/什么意思"
    # --- wrong_person -----------------------------------------------------------------------
    "打错电话": "wrong_person",
    "会帮忙转告": "wrong_person",  # "我会代为转达": the callee is not the lead
    # --- hesitate ---------------------------------------------------------------------------
    "考虑一下": "hesitate",
    # --- voicemail --------------------------------------------------------------------------
    # Only 12 rows, about "留言"; the carrier announcements and greetings are in
    # nlu/data/extra_examples.jsonl.
    "语音信箱": "voicemail",
    # --- other: said on calls, nothing to act on -------------------------------------------
    "招呼用语": "other",  # greetings "喂你好"
    "结束用语": "other",  # "拜拜/晚安"
    "礼貌用语": "other",  # thanks, sorry
    "请求谅解": "other",
    "语气词": "other",  # laughter, fillers
    "答非所问": "other",  # "你答非所问/说人话": complaint about the bot's answer
    "你还在吗": "other",  # "听得到吗/在吗": line check
    "我在": "other",
    "请等一等": "other",  # "稍等": hold on
    "听我说话": "other",
    "请讲重点": "other",  # "说重点/快点说": impatience, no product intent
    "不信任": "other",  # "你们是骗子"
    "污言秽语": "other",  # insults
    "赞美用语": "other",
    "否定(不知道)": "other",
    "否定(不清楚)": "other",
    # --- dropped --------------------------------------------------------------------------
    "政治敏感": DROP,  # political names and terms: never said on these calls
    "祝福用语": DROP,  # "祝你生日快乐": chat-bot small talk
    "祝贺用语": DROP,
    "实体(人名)": DROP,  # bare names, places, organisations, numbers, durations: slot
    "实体(地址)": DROP,  # answers without an intent of their own
    "实体(组织)": DROP,
    "实体(时长)": DROP,
    "答数值": DROP,
    "答时间": DROP,  # bare times ("7点后") would blur busy_callback / book_meeting
    "疑问(姓名)": DROP,  # "XX是谁": about third persons
    "疑问(时间)": DROP,  # debt due dates ("最晚还款时间")
    "疑问(时长)": DROP,  # "逾期多少天"
    "遭遇不幸": DROP,  # "生病了/被骗": life events
    "已完成": DROP,  # "已经还了/已发": debt-collection status; would blur already_have
    "会按时处理": DROP,  # "会还的": debt-collection promise
    "时间推迟": DROP,  # "宽限几天": debt-collection extension
    "否定(错误)": DROP,  # "算错了/密码错了": about bills, not the call
    "查物品信息": DROP,  # "什么东西" half insults, half questions: too mixed
    "做自我介绍": DROP,
    "答状态": DROP,
    "资金充足": DROP,
    "加快速度": DROP,
    "无所谓": DROP,
}


def map_label(label: str) -> str | None:
    """Return the intent for a dataset label, None when dropped; KeyError when unknown."""
    return LABEL_TO_INTENT[label]
