"""Alerts: what an incident change says (rendered once per language when queued) and who gets it.

Alert text is rendered when the outbox row is written, in each subscription's language, so a
retry hours later says what was true then, and the dispatcher (bot/outbox.py) needs nothing but
the row. An alert reads like the verdict: the headline, the failing targets, the problem shares
and the official status, under a title that says opened, update or resolved (with the duration).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.charts import chart_from_json
from bot.i18n import CATALOGS, Message, render, text
from bot.model import Category, Service
from bot.reply import Reply, ReplyKind
from bot.replyview import verdict_view
from bot.store import AlertSpec
from bot.verdict import Verdict

__all__ = ["LEVEL_OF", "alert_reply", "alert_spec", "duration_text"]

# Which subscription level an incident category reaches (subscriptions take their level and
# anything more severe).
LEVEL_OF: dict[str, str] = {
    Category.DOWN.value: "down",
    Category.REGIONAL.value: "regional",
    Category.USER_REPORTS.value: "user_reports",
    Category.DEGRADED.value: "user_reports",
}


def alert_spec(
    kind: str,
    service: Service,
    verdict: Verdict,
    *,
    category: str,
    opened_at: datetime,
    at: datetime,
) -> AlertSpec | None:
    """The outbox entry for one change, or None when nobody is alerted (maintenance)."""
    level = LEVEL_OF.get(category)
    if level is None:
        return None
    outbox_kind = f"update:{int(at.timestamp())}" if kind == "update" else kind
    payloads = {
        lang: _payload(kind, service, verdict, category, opened_at, at, lang) for lang in CATALOGS
    }
    return AlertSpec(level, service.tags, _tenant_of(service), outbox_kind, payloads)


def _payload(
    kind: str,
    service: Service,
    verdict: Verdict,
    category: str,
    opened_at: datetime,
    at: datetime,
    lang: str,
) -> dict[str, Any]:
    name = service.name
    cat = text(f"category.{category}", lang)
    if kind == "resolve":
        lasted = duration_text(at - opened_at, lang)
        title = text("alert.resolved", lang, name=name, duration=lasted)
        lines = [text("alert.resolved_line", lang, name=name, category=cat)]
    else:
        view = verdict_view(verdict, lang)
        key = "alert.opened" if kind == "open" else "alert.updated"
        title = text(key, lang, name=name, category=cat)
        lines = [view.headline, *(x for x in (view.targets, view.problems, view.status) if x)]
    # The typed key for a tenant's own service (its reference is internal).
    typed = service.aliases[0] if "/" in service.key and service.aliases else service.key
    lines.append(render(Message("alert.more", key=typed), lang))
    return {
        "kind": kind,
        "service": service.key,
        "category": category,
        "title": title,
        "lines": lines,
    }


def alert_reply(payload: dict[str, Any]) -> Reply:
    """The Reply an adapter sends for a queued alert or digest (rendered when it was queued)."""
    chart = payload.get("chart")
    return Reply(
        ReplyKind.INFO,
        title=Message("raw", text=str(payload.get("title", ""))),
        lines=tuple(Message("raw", text=str(line)) for line in payload.get("lines", ())),
        chart=chart_from_json(chart) if isinstance(chart, dict) else None,
    )


def duration_text(delta: Any, lang: str) -> str:
    """1 h 12 min, 45 min, 2 d 3 h: how long an incident lasted, to the minute."""
    minutes = max(0, int(delta.total_seconds() // 60))
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return render(Message("duration.days", d=days, h=hours), lang)
    if hours:
        return render(Message("duration.hours", h=hours, m=mins), lang)
    return render(Message("duration.minutes", m=mins), lang)


def _tenant_of(service: Service) -> tuple[str, str] | None:
    scope, slash, _key = service.key.partition("/")
    if not slash:
        return None
    platform, _, tenant = scope.partition(":")
    return platform, tenant
