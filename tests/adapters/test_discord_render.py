"""The pure Discord renderer and the global limiter, without any network.

The renderer must keep every Discord limit however big the reply (cutting with "+N more"), and
the limiter must never let more than ``rate`` requests into any ``per``-second window.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

from bot.adapters.discord.chartcache import ChartCache
from bot.adapters.discord.render import (
    CUSTOM_ID_MAX,
    button_custom_id,
    components_json,
    render_reply,
)
from bot.adapters.ratelimit import GlobalLimiter
from bot.charts import ChartData
from bot.i18n import Message
from bot.model import Category, RegionState
from bot.regions import ISO_CODES
from bot.reply import Button, Reply, ReplyKind, error
from bot.verdict import RegionRow, Verdict

AT = datetime(2022, 12, 28, 21, 30, tzinfo=UTC)


def embed_size(embed: dict[str, object]) -> int:
    footer = embed.get("footer")
    footer_text = footer.get("text", "") if isinstance(footer, dict) else ""
    return sum(len(str(embed.get(k, ""))) for k in ("title", "description")) + len(footer_text)


def test_a_long_list_is_cut_with_a_count_of_what_was_left_out() -> None:
    lines = tuple(Message("help.line", usage=f"/cmd{i}", description="x" * 60) for i in range(300))
    reply = Reply(ReplyKind.INFO, title=Message("services.title", count=300), lines=lines)
    embed = render_reply(reply).embed
    assert embed is not None
    description = embed["description"]
    assert len(description) <= 4096 and embed_size(embed) <= 6000
    shown = description.count("/cmd")
    assert description.endswith(f"+{300 - shown} more")
    assert 0 < shown < 300


def test_a_verdict_with_every_region_keeps_the_embed_limits() -> None:
    rows = tuple(
        RegionRow(code, RegionState.DOWN, probe_failed=3, reports=9) for code in sorted(ISO_CODES)
    )
    verdict = Verdict(
        "twitter",
        "Twitter / X",
        AT,
        Category.DOWN,
        Message("headline.down", name="Twitter / X", regions="everywhere " * 40),
        regions=rows,
    )
    embed = render_reply(Reply(ReplyKind.VERDICT, verdict=verdict)).embed
    assert embed is not None
    assert len(embed["title"]) <= 256 and embed["title"].endswith("…")
    assert len(embed["description"]) <= 4096 and embed_size(embed) <= 6000
    assert embed["description"].count("```") == 2  # the code block is closed
    assert "more" in embed["description"].split("```")[1].splitlines()[-1]


def test_error_text_is_plain_private_and_within_2000_characters() -> None:
    payload = render_reply(error("error.unknown_service_nosuggest", query="q" * 5000))
    assert payload.ephemeral and payload.embed is None
    assert payload.content is not None
    assert len(payload.content) == 2000 and payload.content.endswith("…")


def test_buttons_fit_custom_id_limits_and_rows() -> None:
    long_value = "v" * CUSTOM_ID_MAX
    buttons = (
        Button("report", long_value, Message("button.report")),  # cannot round-trip: dropped
        *(Button("isitdown", f"s{i}", Message("button.recheck")) for i in range(7)),
    )
    payload = render_reply(Reply(ReplyKind.INFO, text=Message("cmd.help"), buttons=buttons))
    assert button_custom_id("report", long_value) is None
    rows = components_json(payload)
    assert [len(r["components"]) for r in rows] == [5, 2]
    ids = [c["custom_id"] for r in rows for c in r["components"]]
    assert ids == [f"ob:isitdown:s{i}" for i in range(7)]
    assert all(len(i) <= CUSTOM_ID_MAX for i in ids)


def test_french_labels_and_english_fallback() -> None:
    buttons = (Button("worksforme", "x", Message("button.works")),)
    french = render_reply(Reply(ReplyKind.INFO, text=Message("cmd.help"), buttons=buttons), "fr")
    assert french.rows[0][0].label == "Ça marche chez moi"
    assert french.content == "Comment utiliser outagebot"
    # A key French lacks falls back to English.
    assert render_reply(Reply(ReplyKind.INFO, text=Message("console.hint")), "fr").content == (
        "Commands start with /, try /help"
    )


async def test_the_limiter_never_admits_more_than_rate_per_window() -> None:
    limiter = GlobalLimiter(rate=3, per=0.2)
    entered: list[float] = []
    finished: list[float] = []

    async def request() -> None:
        async with limiter:
            entered.append(time.monotonic())
            await asyncio.sleep(0)  # a request in flight yields to the others
            finished.append(time.monotonic())

    await asyncio.gather(*(request() for _ in range(9)))
    entered.sort()
    finished.sort()
    # Request k + 3 starts only a full window after request k got its answer.
    for k in range(len(entered) - 3):
        assert entered[k + 3] >= finished[k] + 0.2 - 1e-3


def chart(peak: int) -> ChartData:
    buckets = tuple(AT + timedelta(minutes=15 * i) for i in range(8))
    return ChartData("t", buckets, (0, 1, 2, peak, 2, 1, 0, 0), (1.0,) * 8)


async def test_equal_charts_are_drawn_once_even_when_asked_at_the_same_time() -> None:
    cache = ChartCache(size=1)
    first, second = await asyncio.gather(cache.png(chart(9)), cache.png(chart(9)))
    assert first.startswith(b"\x89PNG") and first is second  # one drawing, shared
    other = await cache.png(chart(5))
    assert other != first
    again = await cache.png(chart(9))  # evicted (size 1): drawn anew, the same picture
    assert again == first and again is not first
