"""The console's labels in Chinese (the default) and English; `?lang=en|zh` switches and a
cookie remembers the choice. Templates call ``t("key")``; an unknown key shows itself, so a
missing label is visible rather than blank."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request

LANGS = ("zh", "en")
COOKIE = "lang"

LABELS: dict[str, tuple[str, str]] = {
    "app": ("外呼机器人控制台", "Call robot console"),
    "campaigns": ("活动", "Campaigns"),
    "live": ("实时通话", "Live calls"),
    "leads": ("线索", "Leads"),
    "dnc": ("免打扰名单", "Do-not-call"),
    "report": ("日报", "Daily report"),
    "sign_in": ("登录", "Sign in"),
    "sign_out": ("退出", "Sign out"),
    "user": ("用户名", "User name"),
    "password": ("密码", "Password"),
    "bad_login": ("用户名或密码错误", "Wrong user name or password"),
    "name": ("名称", "Name"),
    "script": ("话术", "Script"),
    "state": ("状态", "State"),
    "create": ("创建", "Create"),
    "new_campaign": ("新建活动", "New campaign"),
    "upload": ("上传线索名单", "Upload a lead list"),
    "upload_go": ("上传并校验", "Upload and check"),
    "start": ("开始", "Start"),
    "pause": ("暂停", "Pause"),
    "resume": ("继续", "Resume"),
    "accepted": ("已导入", "Accepted"),
    "duplicates": ("重复", "Duplicates"),
    "rejected": ("被拒绝的行", "Rejected rows"),
    "row": ("行", "Row"),
    "reason": ("原因", "Reason"),
    "validation": ("校验报告", "Validation report"),
    "phone": ("电话", "Phone"),
    "grade": ("等级", "Grade"),
    "status": ("状态", "Status"),
    "attempts": ("拨打次数", "Attempts"),
    "search": ("搜索", "Search"),
    "any": ("全部", "Any"),
    "campaign": ("活动", "Campaign"),
    "lead": ("线索", "Lead"),
    "call": ("通话", "Call"),
    "intent": ("意图", "Intent"),
    "confidence": ("置信度", "Confidence"),
    "slots": ("槽位", "Slots"),
    "speaker": ("说话人", "Speaker"),
    "text": ("内容", "Text"),
    "latency": ("延迟(ms)", "Latency (ms)"),
    "turns": ("对话轮次", "Turns"),
    "outcome": ("结果", "Outcome"),
    "disposition": ("挂断原因", "Disposition"),
    "duration": ("时长(秒)", "Duration (s)"),
    "recording": ("录音", "Recording"),
    "no_recording": ("无录音", "No recording"),
    "started": ("开始时间", "Started"),
    "detail": ("详情", "Detail"),
    "recent": ("最近通话", "Recent calls"),
    "live_hint": ("新的通话会自动出现。", "New calls appear here as they happen."),
    "add": ("添加", "Add"),
    "remove": ("移除", "Remove"),
    "global_list": ("全局名单", "Global list"),
    "total": ("总数", "Total"),
    "source": ("来源", "Source"),
    "day": ("日期", "Day"),
    "show": ("查看", "Show"),
    "no_data": ("暂无数据", "Nothing yet"),
    "forbidden": ("无权限", "Not allowed"),
    "error": ("出错了", "Something went wrong"),
    "back": ("返回", "Back"),
    "leads_count": ("线索数", "Leads"),
    "done": ("完成", "Done"),
    "dead_letters": ("CRM 死信", "CRM dead letters"),
    "dead_letters_hint": (
        "多次推送失败的线索；重新投递后，下一轮推送会用同一幂等键再次发送。",
        "Leads the CRM delivery gave up on; a replay sends them again, with the same "
        "idempotency key, on the next delivery pass.",
    ),
    "kind": ("类型", "Kind"),
    "tries": ("尝试次数", "Tries"),
    "created": ("创建时间", "Created"),
    "dead_at": ("放弃时间", "Given up"),
    "last_error": ("最后错误", "Last error"),
    "replay": ("重新投递", "Replay"),
    "replay_all": ("全部重新投递", "Replay all"),
    "replayed": ("已重新排队", "Queued again"),
}


def lang_of(request: Request) -> str:
    """`?lang=` first, then the cookie, then Chinese."""
    for value in (request.query_params.get("lang"), request.cookies.get(COOKIE)):
        if value in LANGS:
            return value
    return "zh"


def translator(lang: str) -> Callable[[str], str]:
    index = LANGS.index(lang) if lang in LANGS else 0

    def t(key: str) -> str:
        pair = LABELS.get(key)
        return pair[index] if pair else key

    return t
