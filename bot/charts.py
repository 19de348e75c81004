"""Charts for verdict replies: 24 h of user reports against the usual level, as PNG or sparkline.

``render_png`` draws the Downdetector-style picture attached to every verdict: reports per bucket
as a filled step line, the usual level for that time of day as a dashed line over a light band,
and buckets where probes confirmed failures shaded red. ``sparkline`` is the same series as one
line of block characters for terminals and the console adapter.

Only matplotlib's object API is used (a ``Figure`` with an explicit Agg canvas, never pyplot):
pyplot keeps global figure state and is not thread-safe, and the bot renders in a worker thread.
Nothing here reads or writes rcParams for the same reason; every style is set on the artist.
"""

from __future__ import annotations

import io
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["ChartData", "render_png", "sparkline"]

# 8 x 3 in at 100 dpi = 800 x 300 px: wide enough for 96 buckets, short enough to sit under a
# chat message without scrolling.
_FIGSIZE = (8.0, 3.0)
_DPI = 100
# Only used when there is a single bucket and so no spacing to measure.
_DEFAULT_STEP = timedelta(minutes=15)
EMPTY_MESSAGE = "No reports in the last 24 hours"

_REPORTS_COLOR = "#1864ab"
_USUAL_COLOR = "#212529"
_BAND_COLOR = "#dee2e6"
_FAILING_COLOR = "#ffc9c9"
_TEXT_COLOR = "#343a40"

_BLOCKS = "▁▂▃▄▅▆▇█"


@dataclass(frozen=True, slots=True)
class ChartData:
    """One chart's worth of data; validated on construction so a bad series fails where it is built.

    ``buckets`` are bucket start times (tz-aware, ascending, equally spaced); ``reports``,
    ``usual`` and, when given, ``failing`` hold one value per bucket. ``timezone`` is the IANA
    name the x-axis labels are shown in.
    """

    title: str
    buckets: tuple[datetime, ...]
    reports: tuple[int, ...]
    usual: tuple[float, ...]
    failing: tuple[bool, ...] = ()
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        lengths = {"buckets": len(self.buckets), "reports": len(self.reports)}
        lengths["usual"] = len(self.usual)
        if self.failing:
            lengths["failing"] = len(self.failing)
        if len(set(lengths.values())) > 1:
            listed = ", ".join(f"{name}={n}" for name, n in lengths.items())
            raise ValueError(f"chart series lengths differ: {listed}")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{self.timezone!r} is not an IANA timezone") from None
        if any(at.tzinfo is None for at in self.buckets):
            raise ValueError("naive datetime in buckets: bucket times must carry a timezone")
        steps = {b - a for a, b in itertools.pairwise(self.buckets)}
        if any(step <= timedelta(0) for step in steps):
            raise ValueError("buckets must be strictly ascending")
        if len(steps) > 1:
            # The step drawing assumes one width for every bucket; a gap would silently stretch
            # a neighbour across it and misplace everything after it.
            raise ValueError("buckets must be equally spaced (a bucket is missing or duplicated)")
        if any(n < 0 for n in self.reports):
            raise ValueError("reports must be >= 0")
        if any(not math.isfinite(u) or u < 0 for u in self.usual):
            raise ValueError("usual must be finite and >= 0")

    @property
    def step(self) -> timedelta:
        """Bucket width: the spacing of ``buckets``, or 15 minutes when there is only one."""
        if len(self.buckets) < 2:
            return _DEFAULT_STEP
        return self.buckets[1] - self.buckets[0]


def render_png(data: ChartData) -> bytes:
    """Draw ``data`` as an ~800x300 PNG; the same input always gives the same bytes."""
    # Imported here: matplotlib costs ~0.3 s and tens of MB, and most processes that handle
    # ChartData (the CLI, the store, commands) never draw one.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=_FIGSIZE, dpi=_DPI, layout="constrained")
    # An explicit Agg canvas: the figure never touches pyplot's global backend machinery.
    FigureCanvasAgg(fig)
    if data.buckets:
        _draw_series(fig, data)
    else:
        _draw_empty(fig, data)
    out = io.BytesIO()
    # No Software/version text chunk (and Agg writes no timestamp), so bytes depend on data only.
    fig.savefig(out, format="png", dpi=_DPI, metadata={"Software": None})
    return out.getvalue()


def _draw_empty(fig: Figure, data: ChartData) -> None:
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.set_title(data.title, loc="left", fontsize=11, color=_TEXT_COLOR)
    ax.text(
        0.5,
        0.5,
        EMPTY_MESSAGE,
        transform=ax.transAxes,
        ha="center",
        va="center",
        fontsize=13,
        color=_USUAL_COLOR,
    )


def _draw_series(fig: Figure, data: ChartData) -> None:
    """Reports, the usual band and line, failing shading, axes and legend."""
    import matplotlib.dates as mdates
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    zone = ZoneInfo(data.timezone)
    step = data.step
    # Bucket i spans edges[i]..edges[i+1]; step artists need the closing edge too.
    # matplotlib.dates ships without annotations, hence the ignores on its calls below.
    edges = mdates.date2num([*data.buckets, data.buckets[-1] + step])  # type: ignore[no-untyped-call]
    mids = (edges[:-1] + edges[1:]) / 2

    ax = fig.add_subplot()

    # Shade whole runs rather than single buckets: fewer artists, and no hairline seams between
    # adjacent failing buckets from antialiasing.
    for start, stop in _true_runs(data.failing):
        ax.axvspan(edges[start], edges[stop], color=_FAILING_COLOR, lw=0, zorder=0)

    # Reports fill first, then the usual band over it: the normal share of each bar turns grey and
    # only the excess above the usual level stays blue, which is the part a reader is looking for.
    ax.stairs(data.reports, edges, fill=True, color=_REPORTS_COLOR, alpha=0.3, lw=0, zorder=1)
    # The band spans 0..usual; it deliberately draws no upper tolerance, since the verdict's
    # thresholds live in its own settings and a second copy here could drift from them.
    ax.fill_between(mids, 0, data.usual, color=_BAND_COLOR, alpha=0.75, lw=0, zorder=2)
    ax.stairs(data.reports, edges, color=_REPORTS_COLOR, lw=1.5, zorder=3)
    # On top of everything: where reports sit at the usual level the dashed line must still show.
    (usual_line,) = ax.plot(
        mids,
        data.usual,
        color=_USUAL_COLOR,
        lw=1.4,
        ls=(0, (4, 2.5)),
        zorder=4,
    )
    # "4d" is the fill's 0.3 alpha; set on the face only so the key's outline stays solid.
    reports_key = Patch(facecolor=_REPORTS_COLOR + "4d", edgecolor=_REPORTS_COLOR, lw=1.5)
    # Band and dashed line as one legend entry, drawn overlaid, as they appear on the chart.
    usual_key = (Patch(color=_BAND_COLOR), usual_line)
    keys: list[Any] = [reports_key, usual_key]
    labels = ["Reports", "Usual"]
    if any(data.failing):
        keys.append(Patch(color=_FAILING_COLOR))
        labels.append("Probes failing")
    ax.legend(keys, labels, loc="upper left", fontsize=8, frameon=False, ncols=len(keys))

    top = max(max(data.reports), max(data.usual), 1.0)
    # Headroom keeps the legend off the peak; the floor of 5 stops a quiet day (0-1 reports)
    # from being drawn as a full-height wall.
    ax.set_ylim(0, max(top * 1.3, 5.0))
    ax.set_xlim(edges[0], edges[-1])
    ax.yaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
    locator = mdates.AutoDateLocator(tz=zone, minticks=4, maxticks=10)  # type: ignore[no-untyped-call]
    formatter = mdates.DateFormatter("%H:%M", tz=zone)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(formatter)

    minutes = round(step.total_seconds() / 60)
    ax.set_ylabel(f"reports / {minutes} min", fontsize=8, color=_TEXT_COLOR)
    ax.set_xlabel(data.timezone, fontsize=8, color=_TEXT_COLOR, loc="right")
    ax.set_title(data.title, loc="left", fontsize=11, color=_TEXT_COLOR)
    ax.tick_params(labelsize=8, colors=_TEXT_COLOR)
    ax.grid(axis="y", color="#e9ecef", lw=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _true_runs(flags: Sequence[bool]) -> list[tuple[int, int]]:
    """Half-open index ranges [start, stop) of consecutive True values."""
    runs: list[tuple[int, int]] = []
    start: int | None = None
    for i, flag in enumerate([*flags, False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            runs.append((start, i))
            start = None
    return runs


def sparkline(values: Sequence[float], width: int = 48) -> str:
    """One line of ``▁▂▃▄▅▆▇█``, at most ``width`` characters, scaled from 0 to the maximum.

    Longer series are split into ``width`` consecutive groups (sizes differ by at most one) and
    each group shows its maximum, so a one-bucket spike is never averaged away.
    """
    if width < 1:
        raise ValueError(f"width must be >= 1, got {width}")
    if not values:
        return ""
    if not all(math.isfinite(v) for v in values):
        raise ValueError("sparkline values must be finite")
    n = len(values)
    if n > width:
        bounds = [i * n // width for i in range(width + 1)]
        values = [max(values[a:b]) for a, b in itertools.pairwise(bounds)]
    # Zero-based so heights compare as counts do; a negative series still fits.
    low = min(0.0, *values)
    high = max(values)
    if high == low:
        return _BLOCKS[0] * len(values)
    scale = (len(_BLOCKS) - 1) / (high - low)
    return "".join(_BLOCKS[round((v - low) * scale)] for v in values)


# ---- as JSON (queued digests carry their chart's data, not a picture) ---------------------------


def chart_to_json(chart: ChartData) -> dict[str, Any]:
    """The data of ``chart`` as JSON-safe values (``chart_from_json`` reads it back)."""
    return {
        "title": chart.title,
        "buckets": [b.isoformat() for b in chart.buckets],
        "reports": list(chart.reports),
        "usual": list(chart.usual),
        "failing": list(chart.failing),
        "timezone": chart.timezone,
    }


def chart_from_json(doc: dict[str, Any]) -> ChartData:
    return ChartData(
        title=str(doc["title"]),
        buckets=tuple(datetime.fromisoformat(b) for b in doc["buckets"]),
        reports=tuple(int(n) for n in doc["reports"]),
        usual=tuple(float(u) for u in doc["usual"]),
        failing=tuple(bool(f) for f in doc["failing"]),
        timezone=str(doc["timezone"]),
    )
