"""The daily report as one self-contained HTML page: inline CSS and inline SVG charts drawn
here, no script, nothing fetched (it opens from a file, a mail attachment or the console).

It renders the dict `campaigns.reports.daily_report` returns and nothing else, so every number
on the page is the JSON's. Each chart has the table of its numbers beside it; table rows carry
``data-table`` / ``data-key`` attributes so a test (or a script) can read the figures back.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from core.labels import DISPOSITION_LABELS, INTENT_LABELS, OUTCOME_LABELS, en, zh

TEMPLATES = Path(__file__).with_name("templates")
BAR_H = 22  # px per horizontal bar
LABEL_W = 170  # px for the labels left of the bars
CHART_W = 560
HOUR_W = 20  # px per hour column
HOUR_H = 140  # px of the tallest hour bar (answer rate 100 %)

FUNNEL_LABELS = {
    "dialled": ("拨打", "Dialled"),
    "connected": ("接通", "Connected"),
    "conversation": ("有效对话", "Conversation"),
    "qualified": ("合格线索", "Qualified"),
}


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar of a chart, in SVG user units, with what it shows."""

    key: str
    label: str
    value: float
    x: float
    y: float
    w: float
    h: float
    text: str  # the value as printed beside the bar


def hbars(items: list[tuple[str, str, float]], *, fmt: str = "{:g}") -> list[Bar]:
    """Horizontal bars (key, label, value), scaled so the largest fills the chart."""
    top = max((v for _, _, v in items), default=0) or 1
    span = CHART_W - LABEL_W - 60
    return [
        Bar(k, label, v, LABEL_W, i * BAR_H + 2, span * v / top, BAR_H - 6, fmt.format(v))
        for i, (k, label, v) in enumerate(items)
    ]


def hour_bars(by_hour: list[dict[str, Any]]) -> list[Bar]:
    """One column per local hour: its height is the answer rate (no dials: no column)."""
    bars = []
    for row in by_hour:
        rate = row["answer_rate"]
        h = HOUR_H * (rate or 0)
        x = 30 + row["hour"] * HOUR_W
        text = "" if rate is None else f"{rate * 100:.0f}%"
        label = f"{row['hour']:02d}"
        bars.append(Bar(str(row["hour"]), label, rate or 0, x, HOUR_H - h, 14, h, text))
    return bars


def _labelled(counts: dict[str, int], table: dict[str, tuple[str, str]]) -> list[dict[str, Any]]:
    return [
        {"key": k, "zh": zh(table, k), "en": en(table, k), "value": v} for k, v in counts.items()
    ]


def view(report: dict[str, Any]) -> dict[str, Any]:
    """What the template shows: the report plus chart geometry and bilingual labels."""
    total = report["total"]
    funnel = [
        {"key": k, "zh": FUNNEL_LABELS[k][0], "en": FUNNEL_LABELS[k][1], "value": v}
        for k, v in total["funnel"].items()
    ]
    outcomes = _labelled({k: v for k, v in total["outcomes"].items() if v}, OUTCOME_LABELS)
    intents = _labelled(total["intents"], INTENT_LABELS)
    dispositions = _labelled(
        {k: v for k, v in total["dispositions"].items() if v}, DISPOSITION_LABELS
    )

    def chart(rows: list[dict[str, Any]]) -> list[Bar]:
        return hbars([(r["key"], f"{r['zh']} {r['en']}", r["value"]) for r in rows])

    return {
        "r": report,
        "t": total,
        "funnel": funnel,
        "outcomes": outcomes,
        "intents": intents,
        "dispositions": dispositions,
        "funnel_bars": chart(funnel),
        "outcome_bars": chart(outcomes),
        "intent_bars": chart(intents),
        "hour_bars": hour_bars(total["by_hour"]),
        "hours": [h for h in total["by_hour"] if h["dials"]],
        "sizes": {"bar_h": BAR_H, "chart_w": CHART_W, "hour_w": HOUR_W, "hour_h": HOUR_H},
    }


def _pct(x: float | None) -> str:
    return "" if x is None else f"{x * 100:.1f}%"


def _num(x: float | None) -> str:
    return "" if x is None else f"{x:g}" if isinstance(x, float) else str(x)


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = _pct
    env.filters["num"] = _num
    return env


def to_html(report: dict[str, Any]) -> str:
    """The page for one `daily_report` result."""
    return _environment().get_template("daily_report.html.j2").render(**view(report))
