"""On-demand checks: ``/isitdown https://example.com`` for something outside the catalog.

The URL is probed now from every connected region (this machine and each agent) and the results
go through the same verdict rules as catalog services (one probe per region is the evidence, so a
single failure counts), giving "down for everyone", "down in Japan" or "up everywhere we check:
probably just you". Chat users never get the operator's private ranges: the policy here is the
default one (public addresses, standard ports), whatever ``[probes] allow_private`` says.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import datetime
from urllib.parse import urlsplit

from bot.detector import ThresholdDetector
from bot.evidence import Evidence, ProbeSample
from bot.i18n import Message, RegionList
from bot.model import Service, Target, to_epoch, utcnow
from bot.probes import run_probe
from bot.probes.base import Outcome, ProbeContext
from bot.ssrf import Blocked, Policy, check_url
from bot.verdict import Thresholds, Verdict, decide

log = logging.getLogger(__name__)

# region -> outcome, from the agents (the hub's request_probe), within the given timeout.
RemoteProbe = Callable[[str, float], Awaitable[Mapping[str, Outcome]]]

# One probe per region is all the evidence there is, so one failure must count.
_THRESHOLDS = Thresholds(confirm_failures=1, recover_successes=1)


class OnDemand:
    def __init__(
        self,
        *,
        region: str,
        ctx: ProbeContext,
        remote: RemoteProbe | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._region = region
        self._ctx = ctx
        self._remote = remote
        self._clock = clock

    @property
    def policy(self) -> Policy:
        return self._ctx.policy

    async def close(self) -> None:
        await self._ctx.session.close()

    def refuse(self, url: str) -> str | None:
        """Why ``url`` may not be checked at all (scheme, port, blocked literal), else None."""
        try:
            check_url(url, self._ctx.policy)
        except Blocked as exc:
            return exc.reason
        return None

    async def check(self, url: str) -> Verdict:
        """Probe ``url`` from every region now and decide as for a catalog service."""
        target = Target("web", url)
        at = self._clock()
        local = asyncio.ensure_future(run_probe(target, self._ctx))
        remote: Mapping[str, Outcome] = {}
        if self._remote is not None:
            try:
                remote = await self._remote(url, self._ctx.timeout)
            except Exception:
                # Agents are extra vantage points: without them we still answer from here.
                log.exception("on-demand probe via agents failed url=%r", url)
        results = {**remote, self._region: await local}
        verdict = decide(_evidence(url, target, at, results), _THRESHOLDS, ThresholdDetector())
        # Say why each failing region failed: that is what tells "their server" from "a block".
        failures = tuple(
            Message("note.probe_failed", region=RegionList((region,)), detail=o.detail)
            for region, o in sorted(results.items())
            if not o.ok and o.detail
        )
        return replace(verdict, notes=verdict.notes + failures)


def _evidence(url: str, target: Target, at: datetime, results: Mapping[str, Outcome]) -> Evidence:
    host = urlsplit(url).hostname or url
    service = Service(key=host, name=host, targets=(target,))
    stamp = to_epoch(at)
    samples = tuple(
        ProbeSample(
            "web", region, stamp, o.ok, o.status, o.latency_ms, o.error.value if o.error else None
        )
        for region, o in sorted(results.items())
    )
    return Evidence(service=service, at=at, probes=samples, last_probe_at=at)
