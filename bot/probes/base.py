"""The probe contract: what every probe kind receives and returns (blackbox_exporter's shape).

A probe kind is an async function ``(target, context) -> Outcome`` registered by name in
``bot.probes.PROBERS``. One timeout is derived once (``ProbeContext.timeout``) and passed down; a
probe never raises for a failure of the thing it probes: it returns an Outcome whose ``error`` is
a typed ``Reason`` and whose ``detail`` is a sentence for people.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime

from bot.model import Target
from bot.probes.session import ProbeSession
from bot.ssrf import Policy


class Reason(enum.StrEnum):
    """Why a probe failed; stable strings (they are stored and shown in JSON)."""

    TIMEOUT = "timeout"
    REFUSED = "refused"
    DNS = "dns"
    TLS = "tls"
    STATUS = "status"
    KEYWORD = "keyword"
    TOO_LARGE = "too_large"
    TOO_MANY_REDIRECTS = "too_many_redirects"
    BLOCKED = "blocked"
    UNSUPPORTED_SCHEME = "unsupported_scheme"
    CONNECTION = "connection"  # reset, closed early, protocol error
    RECORDS = "records"  # dns: resolved, but not to the expected records


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    status: int | None = None
    latency_ms: float | None = None
    error: Reason | None = None
    detail: str | None = None  # for people: why it failed, or a warning when ok
    cert_expires_at: datetime | None = None  # https only
    warning: str | None = None  # e.g. "certificate expires in 5 days"


@dataclass(frozen=True, slots=True)
class ProbeContext:
    """What a probe may use. ``session`` is the SSRF-guarded one (``bot.probes.session``)."""

    session: ProbeSession
    policy: Policy
    timeout: float  # seconds, the whole probe
    tls_warn_days: int = 14
    # Probes in flight at once; waiting here costs neither the timeout nor the latency.
    gate: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(500))


ProbeFn = Callable[[Target, ProbeContext], Awaitable[Outcome]]

# True while ``run_probe`` holds the probe's deadline: a prober called through it need not arm
# a second timer for the same ``ctx.timeout`` (each costs ~10 µs; the http probe's whole budget
# is a few hundred). A prober called directly sees False and holds the deadline itself.
DEADLINE_HELD: ContextVar[bool] = ContextVar("probe_deadline_held", default=False)
