"""``outagebot probe URL [--json]``: one on-demand check of a URL from the terminal.

The same probe as scheduled and chat probes, through the same SSRF guard, under the config's
``[probes]`` policy (so the operator's ``allow_private`` applies here, as it does to the catalog).
The URL is checked first (``bot.ssrf.check_url``): an unsupported scheme or a blocked address is
answered without opening a socket. Exit code 0 when the probe passed, 1 when it did not.
"""

from __future__ import annotations

import asyncio
import json
import logging

from yarl import URL

from bot.config import Settings
from bot.model import Target
from bot.probes import make_context, run_probe
from bot.probes.base import Outcome, Reason
from bot.ssrf import Blocked, Policy, check_url
from bot.ssrf.addresses import short

log = logging.getLogger(__name__)


async def probe_command(settings: Settings, url: str) -> tuple[int, dict[str, object]]:
    """Probe ``url`` once; return the exit code and the JSON object to print.

    The object's keys: url, ok, status, latency_ms, error (a ``Reason`` value or null), detail
    (why it failed, or a warning such as an expiring certificate; else null).
    """
    policy = Policy.from_config(settings.probes.allow_private, ports=settings.probes.ports)
    refused = _refusal(url, policy)
    if refused is not None:
        return 1, _as_json(url, refused)
    ctx = make_context(settings.probes, timeout=settings.probes.on_demand_timeout_seconds)
    try:
        outcome = await run_probe(Target(kind="cli", url=url), ctx)
    finally:
        await ctx.session.close()
    return (0 if outcome.ok else 1), _as_json(url, outcome)


def run(settings: Settings, url: str, *, as_json: bool) -> int:
    """``outagebot probe``: probe, print (one JSON object or one line), return the exit code."""
    code, result = asyncio.run(probe_command(settings, url))
    print(json.dumps(result, ensure_ascii=False) if as_json else render_summary(result))
    return code


def render_summary(result: dict[str, object]) -> str:
    """One line for people: ``OK  https://x/  HTTP 200 in 120 ms`` or the failure's reason."""
    url = short(str(result["url"]))
    if result["ok"]:
        answer = f"HTTP {result['status']}" if result["status"] is not None else "answered"
        line = f"OK  {url}  {answer} in {result['latency_ms']:.0f} ms"
        return f"{line}  (warning: {result['detail']})" if result["detail"] else line
    return f"FAILED ({result['error']})  {url}  {result['detail']}"


def _refusal(url: str, policy: Policy) -> Outcome | None:
    """Why ``url`` may not be probed at all, before any socket exists; ``None`` if it may."""
    try:
        check_url(url, policy)
    except Blocked as exc:
        try:
            scheme = URL(url).scheme.lower()
        except (TypeError, ValueError):
            scheme = ""
        reason = Reason.BLOCKED if scheme in policy.schemes else Reason.UNSUPPORTED_SCHEME
        return Outcome(False, error=reason, detail=exc.reason)
    return None


def _as_json(url: str, outcome: Outcome) -> dict[str, object]:
    latency = None if outcome.latency_ms is None else round(outcome.latency_ms, 1)
    return {
        "url": url,
        "ok": outcome.ok,
        "status": outcome.status,
        "latency_ms": latency,
        "error": None if outcome.error is None else outcome.error.value,
        "detail": outcome.detail,
    }
