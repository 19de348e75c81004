"""Report detector: the usual level of reports for a service, region and time of day, and the level.

Downdetector's rule of thumb: a service has problems when reports clearly exceed the typical volume
for that time of day. ``ThresholdDetector`` takes the mean count in the same hour over the past days
as the usual level, scales it to the report window, and asks for a multiple of it with a floor
(``min_reports``) so a handful of reports on a quiet service is not an outage. A smarter detector
(the NAB-scored one) plugs in by implementing ``Detector``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from bot.model import ReportLevel


@dataclass(frozen=True, slots=True)
class Assessment:
    usual: float  # expected counted reports in the window at this time of day
    level: ReportLevel


class Detector(Protocol):
    """Turns a recent count and its same-hour history into a usual level and a report level."""

    def assess(self, recent: int, history: Sequence[int], *, window_seconds: int) -> Assessment: ...


@dataclass(frozen=True, slots=True)
class ThresholdDetector:
    min_reports: int = 5
    problem_factor: float = 3.0
    possible_factor: float = 1.5

    def assess(self, recent: int, history: Sequence[int], *, window_seconds: int) -> Assessment:
        # history holds counts per hour; days without reports are zeros, so the mean is honest.
        per_hour = sum(history) / len(history) if history else 0.0
        usual = per_hour * window_seconds / 3600
        if recent >= max(self.min_reports, usual * self.problem_factor):
            level = ReportLevel.PROBLEMS
        elif recent > usual and recent >= max(
            math.ceil(self.min_reports / 2), usual * self.possible_factor
        ):
            level = ReportLevel.POSSIBLE
        else:
            level = ReportLevel.NONE
        return Assessment(usual=usual, level=level)
