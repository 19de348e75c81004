"""Probe kinds (http, tcp, dns) behind one registry; see ``bot.probes.base`` for the contract.

``run_probe`` is the one entry point: it picks the prober by the target's URL scheme, holds the
whole probe to ``ctx.timeout`` (one deadline, derived once, as blackbox_exporter does) and turns
anything unexpected into a failed ``Outcome``, so a caller never handles a probe exception.
"""

from __future__ import annotations

import asyncio
import logging

from bot.config import ProbeSettings
from bot.model import Target
from bot.probes import messages
from bot.probes.base import DEADLINE_HELD, Outcome, ProbeContext, ProbeFn, Reason
from bot.probes.dns import probe_dns
from bot.probes.http import probe_http
from bot.probes.session import open_session
from bot.probes.tcp import probe_tcp
from bot.ssrf import Policy

log = logging.getLogger(__name__)

PROBERS: dict[str, ProbeFn] = {"http": probe_http, "tcp": probe_tcp, "dns": probe_dns}
"""Probe kind (``Target.probe_kind``: http covers https) -> prober."""

_KINDS = ("http", "https", "tcp", "dns")  # the schemes PROBERS covers, for messages


async def run_probe(target: Target, ctx: ProbeContext) -> Outcome:
    """Probe ``target`` with the prober for its scheme, within ``ctx.timeout``; never raises.

    Cancellation still propagates (the scheduler stopping is not a probe failure).
    """
    prober = PROBERS.get(target.probe_kind)
    if prober is None:
        detail = messages.unsupported(target.url, _KINDS)
        return Outcome(False, error=Reason.UNSUPPORTED_SCHEME, detail=detail)
    try:
        async with ctx.gate, asyncio.timeout(ctx.timeout):
            held = DEADLINE_HELD.set(True)
            try:
                return await prober(target, ctx)
            finally:
                DEADLINE_HELD.reset(held)
    except TimeoutError:
        detail = messages.timed_out(target.url, ctx.timeout)
        return Outcome(False, error=Reason.TIMEOUT, detail=detail)
    except Exception:
        # A bug in a prober, not a fact about the target: log it with the traceback, and report
        # a failed probe rather than crash the round that probes every other target.
        log.exception("probe crashed kind=%s url=%r", target.probe_kind, target.url)
        return Outcome(False, error=Reason.CONNECTION, detail=messages.crashed(target.url))


def make_context(
    settings_probes: ProbeSettings,
    *,
    local_addr: str | None = None,
    timeout: float | None = None,
) -> ProbeContext:
    """A probe context from the ``[probes]`` config: its SSRF policy and a guarded session.

    ``local_addr`` binds the source address of every probe (the demo's regions); ``timeout``
    overrides ``timeout_seconds`` (on-demand probes use ``on_demand_timeout_seconds``). Call it
    inside the running loop; the caller closes ``ctx.session``.
    """
    policy = Policy.from_config(settings_probes.allow_private, ports=settings_probes.ports)
    if local_addr is None:
        local_addr = settings_probes.source_address
    seconds = settings_probes.timeout_seconds if timeout is None else timeout
    return ProbeContext(
        session=open_session(policy, timeout=seconds, local_addr=local_addr),
        policy=policy,
        timeout=seconds,
        tls_warn_days=settings_probes.tls_warn_days,
        gate=asyncio.Semaphore(settings_probes.max_in_flight),
    )


__all__ = [
    "PROBERS",
    "Outcome",
    "ProbeContext",
    "ProbeFn",
    "Reason",
    "make_context",
    "probe_dns",
    "probe_http",
    "probe_tcp",
    "run_probe",
]
