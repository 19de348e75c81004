"""Tests for bot.charts: PNG rendering of the 24 h report chart and the terminal sparkline."""

from __future__ import annotations

import math
import struct
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.charts import ChartData, render_png, sparkline

BLOCKS = "▁▂▃▄▅▆▇█"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
START = datetime(2025, 3, 14, 9, 0, tzinfo=UTC)
TITLE = "Twitter / X — user reports, last 24 h"


def _chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    """(type, payload) of every PNG chunk, in order."""
    out: list[tuple[bytes, bytes]] = []
    pos = len(PNG_SIGNATURE)
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos : pos + 8])
        out.append((kind, png[pos + 8 : pos + 8 + length]))
        pos += 12 + length  # length + type + payload + CRC
    return out


def _size(png: bytes) -> tuple[int, int]:
    assert png[:8] == PNG_SIGNATURE
    kind, payload = _chunks(png)[0]
    assert kind == b"IHDR"
    width, height = struct.unpack(">II", payload[:8])
    return width, height


def _day(*, spike: bool = True, failing: bool = True, timezone: str = "Europe/Paris") -> ChartData:
    """96 quarter-hour buckets: a daily-shaped baseline, noise, and an outage spike at 70-79."""
    n = 96
    buckets = tuple(START + timedelta(minutes=15 * i) for i in range(n))
    usual = tuple(round(6 + 5 * math.sin(2 * math.pi * (i - 30) / n), 2) for i in range(n))
    bump = [5, 20, 60, 110, 140, 120, 80, 45, 25, 12]
    reports = tuple(
        max(int(u) + (i * 7 % 5) - 2 + (bump[i - 70] if spike and 70 <= i < 80 else 0), 0)
        for i, u in enumerate(usual)
    )
    flags = tuple(failing and 72 <= i < 77 for i in range(n))
    return ChartData(TITLE, buckets, reports, usual, flags, timezone)


# --- render_png ---------------------------------------------------------------------------------


def test_png_signature_and_size() -> None:
    png = render_png(_day())
    assert png.startswith(PNG_SIGNATURE)
    width, height = _size(png)
    assert 700 <= width <= 900
    assert 250 <= height <= 350
    assert len(png) < 100_000


def test_png_embeds_no_software_or_time_metadata() -> None:
    png = render_png(_day())
    kinds = {kind for kind, _ in _chunks(png)}
    assert not kinds & {b"tEXt", b"iTXt", b"zTXt", b"tIME"}
    assert b"matplotlib" not in png.lower()


def test_same_input_same_bytes() -> None:
    assert render_png(_day()) == render_png(_day())


def test_different_input_different_bytes() -> None:
    base = render_png(_day())
    assert render_png(_day(spike=False)) != base
    assert render_png(_day(failing=False)) != base
    assert render_png(_day(timezone="Asia/Tokyo")) != base
    assert render_png(replace(_day(), title="Slack — user reports, last 24 h")) != base


def test_renders_identically_from_worker_threads() -> None:
    # The bot renders off the event loop; concurrent renders must neither crash nor bleed state.
    inputs = [_day(), _day(spike=False), _day(failing=False), _day(timezone="Asia/Tokyo")]
    expected = [render_png(d) for d in inputs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(render_png, inputs)) == expected


def test_failing_is_optional() -> None:
    data = replace(_day(), failing=())
    assert _size(render_png(data)) == _size(render_png(_day()))


def test_single_bucket_and_all_zero_render() -> None:
    one = ChartData(TITLE, (START,), (3,), (1.0,))
    zeros = ChartData(
        TITLE, tuple(START + timedelta(minutes=15 * i) for i in range(4)), (0,) * 4, (0.0,) * 4
    )
    for data in (one, zeros):
        assert render_png(data).startswith(PNG_SIGNATURE)


def test_empty_data_renders_png() -> None:
    empty = ChartData(TITLE, (), (), ())
    png = render_png(empty)
    assert png.startswith(PNG_SIGNATURE)
    assert 700 <= _size(png)[0] <= 900
    # The "No reports" picture is not the same as a chart with data.
    assert png != render_png(_day())
    assert png == render_png(ChartData(TITLE, (), (), ()))


@pytest.mark.parametrize(
    ("reports", "usual", "failing", "expected"),
    [
        ((1, 2), (1.0, 2.0, 3.0), (), ["buckets=3", "reports=2", "usual=3"]),
        ((1, 2, 3), (1.0,), (), ["buckets=3", "reports=3", "usual=1"]),
        ((1, 2, 3), (1.0, 2.0, 3.0), (True,), ["buckets=3", "failing=1"]),
    ],
)
def test_mismatched_lengths_raise(
    reports: tuple[int, ...],
    usual: tuple[float, ...],
    failing: tuple[bool, ...],
    expected: list[str],
) -> None:
    buckets = tuple(START + timedelta(minutes=15 * i) for i in range(3))
    with pytest.raises(ValueError, match="lengths differ") as info:
        render_png(ChartData(TITLE, buckets, reports, usual, failing))
    for part in expected:
        assert part in str(info.value)


def test_rejects_bad_buckets_and_timezone() -> None:
    quarter = timedelta(minutes=15)
    with pytest.raises(ValueError, match="naive"):
        ChartData(TITLE, (datetime(2025, 1, 1),), (1,), (1.0,))
    with pytest.raises(ValueError, match="ascending"):
        ChartData(TITLE, (START + quarter, START), (1, 1), (1.0, 1.0))
    with pytest.raises(ValueError, match="equally spaced"):
        ChartData(TITLE, (START, START + quarter, START + 3 * quarter), (1,) * 3, (1.0,) * 3)
    with pytest.raises(ValueError, match="IANA"):
        ChartData(TITLE, (START,), (1,), (1.0,), timezone="Mars/Olympus")
    with pytest.raises(ValueError, match="reports"):
        ChartData(TITLE, (START,), (-1,), (1.0,))
    with pytest.raises(ValueError, match="usual"):
        ChartData(TITLE, (START,), (1,), (math.nan,))


# --- sparkline ----------------------------------------------------------------------------------


def test_sparkline_short_series_one_char_per_value() -> None:
    line = sparkline([0, 1, 2, 3])
    assert len(line) == 4
    assert set(line) <= set(BLOCKS)
    assert line[0] == "▁"
    assert line[-1] == "█"


def test_sparkline_never_exceeds_width() -> None:
    for n in (1, 47, 48, 49, 96, 100, 1000):
        for width in (1, 5, 48):
            line = sparkline(list(range(n)), width=width)
            assert len(line) == min(n, width), (n, width)


def test_sparkline_monotone_input_is_non_decreasing() -> None:
    for values in ([*range(20)], [i * i / 7 for i in range(200)], [0, 0, 1, 1, 5, 100]):
        line = sparkline(values, width=30)
        levels = [BLOCKS.index(ch) for ch in line]
        assert levels == sorted(levels)
        assert levels[-1] == len(BLOCKS) - 1


def test_sparkline_all_zero_and_empty() -> None:
    assert sparkline([0, 0, 0]) == "▁▁▁"
    assert sparkline([0.0] * 200, width=10) == "▁" * 10
    assert sparkline([]) == ""


def test_sparkline_resampling_keeps_a_spike() -> None:
    # One hot bucket among 96 must survive squeezing into 10 characters (max, not mean).
    values = [1.0] * 96
    values[50] = 100.0
    line = sparkline(values, width=10)
    assert len(line) == 10
    assert line.count("█") == 1
    assert line.index("█") == 50 * 10 // 96
    assert set(line) - {"█"} == {"▁"}


def test_sparkline_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        sparkline([1, 2], width=0)
    with pytest.raises(ValueError):
        sparkline([1, math.inf])
