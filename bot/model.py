"""Domain values shared by every layer: services, evidence records and the enums that name them.

Everything here is plain, frozen data with no I/O, so the verdict, the store and the adapters can
all speak it without importing each other.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime


class Problem(enum.StrEnum):
    """What a user says is broken, as Downdetector groups it."""

    WEBSITE = "website"
    APP = "app"
    LOGIN = "login"
    NOTIFICATIONS = "notifications"
    API = "api"
    OTHER = "other"


# Words people use for each problem type.
_PROBLEM_WORDS = {
    **{p.value: p for p in Problem},
    "web": Problem.WEBSITE,
    "site": Problem.WEBSITE,
    "desktop": Problem.WEBSITE,
    "browser": Problem.WEBSITE,
    "mobile": Problem.APP,
    "ios": Problem.APP,
    "android": Problem.APP,
    "signin": Problem.LOGIN,
    "sign-in": Problem.LOGIN,
    "auth": Problem.LOGIN,
    "password": Problem.LOGIN,
    "notification": Problem.NOTIFICATIONS,
    "push": Problem.NOTIFICATIONS,
}


def problem_from_word(word: str) -> Problem | None:
    """The problem type a user means by ``word`` ("mobile" -> app), or None."""
    return _PROBLEM_WORDS.get(word.strip().casefold())


class Category(enum.StrEnum):
    """The verdict's one-word answer. Order of severity is given by ``SEVERITY``."""

    UP = "up"
    USER_REPORTS = "user_reports"
    REGIONAL = "regional"
    DOWN = "down"
    DEGRADED = "degraded"
    MAINTENANCE = "maintenance"
    UNKNOWN = "unknown"


# Higher is worse; alerts and sorting use this.
SEVERITY: dict[Category, int] = {
    Category.UNKNOWN: 0,
    Category.UP: 1,
    Category.MAINTENANCE: 2,
    Category.DEGRADED: 3,
    Category.USER_REPORTS: 4,
    Category.REGIONAL: 5,
    Category.DOWN: 6,
}


class ReportLevel(enum.StrEnum):
    """How the recent report count compares with the usual level."""

    NONE = "none"
    POSSIBLE = "possible"
    PROBLEMS = "problems"


class Indicator(enum.StrEnum):
    """A status page's overall indicator (the Atlassian Statuspage vocabulary)."""

    NONE = "none"
    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"
    MAINTENANCE = "maintenance"


class RegionState(enum.StrEnum):
    """One region's row in the verdict."""

    OK = "ok"
    SLOW = "slow"
    USER_REPORTS = "user_reports"
    PARTIAL = "partial"  # some targets fail here, others pass
    DOWN = "down"
    NO_DATA = "no_data"


class TargetState(enum.StrEnum):
    """One target's row (web, api, ...) across regions."""

    OK = "ok"
    SLOW = "slow"
    REGIONAL = "regional"
    DOWN = "down"
    NO_DATA = "no_data"


@dataclass(frozen=True, slots=True)
class Target:
    """One endpoint of a service that probes check."""

    kind: str  # "web", "api", ... (the key in the service's targets table)
    url: str
    method: str = "GET"
    expect_status: tuple[int, ...] = ()  # empty: any 2xx or 3xx
    keyword: str | None = None  # must appear in the body
    keyword_absent: str | None = None  # must not appear in the body
    max_latency_ms: float | None = None  # slower than this is "degraded"
    interval_seconds: int | None = None  # None: [probes] interval_seconds
    expect_records: tuple[str, ...] = ()  # dns:// targets: addresses the name must resolve to

    @property
    def probe_kind(self) -> str:
        """The prober that checks this target, from the URL scheme: http, tcp or dns."""
        scheme = self.url.split("://", 1)[0].lower()
        return "http" if scheme in ("http", "https") else scheme


@dataclass(frozen=True, slots=True)
class Service:
    """A catalog entry: what users type and what we check."""

    key: str
    name: str
    aliases: tuple[str, ...] = ()
    targets: tuple[Target, ...] = ()
    status_page: str | None = None
    tags: tuple[str, ...] = ()

    def target(self, kind: str) -> Target | None:
        return next((t for t in self.targets if t.kind == kind), None)


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One probe of one target from one region."""

    service: str
    target: str
    region: str
    at: datetime
    ok: bool
    status: int | None = None
    latency_ms: float | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Reporter:
    """Who sent a report: the user within a tenant (a Discord guild or a Slack workspace)."""

    platform: str  # "discord", "slack", "console", "api", "import"
    tenant: str  # guild or workspace id; "" for direct messages and imports
    user: str


@dataclass(frozen=True, slots=True)
class Report:
    """A crowd report, ``/report twitter website``."""

    service: str
    region: str
    problem: Problem
    reporter: Reporter
    at: datetime
    note: str = ""


@dataclass(frozen=True, slots=True)
class WorksForMe:
    """A "works for me" confirmation."""

    service: str
    region: str
    reporter: Reporter
    at: datetime


@dataclass(frozen=True, slots=True)
class StatusSnapshot:
    """What a service's official status page said at a moment."""

    service: str
    at: datetime
    indicator: Indicator
    description: str


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
    """A declared maintenance period; the verdict says "maintenance" inside it."""

    service: str
    starts: datetime
    ends: datetime
    note: str = ""


@dataclass(frozen=True, slots=True)
class Catalog:
    """The services the bot knows, in display order."""

    services: tuple[Service, ...] = field(default_factory=tuple)

    def get(self, key: str) -> Service | None:
        return next((s for s in self.services if s.key == key), None)


def parse_time(value: str) -> datetime | None:
    """An ISO 8601 time with a timezone ("2022-12-28T21:30:00Z"); None if it is not one."""
    text = value.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        return None
    return at if at.tzinfo is not None else None


def utcnow() -> datetime:
    return datetime.now(UTC)


def to_epoch(at: datetime) -> int:
    """Seconds since the epoch; every timestamp in the store is one of these."""
    if at.tzinfo is None:
        raise ValueError("naive datetime: timestamps must carry a timezone")
    return int(at.timestamp())


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
