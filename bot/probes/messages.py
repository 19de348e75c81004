"""The sentences probes put in ``Outcome.detail`` and ``Outcome.warning``, in one place.

People read these in chat and in ``outagebot probe``: each says what happened and where. URLs and
keywords come from tenants, so they are shortened before they are echoed back.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from bot.ssrf.addresses import short


def seconds(value: float) -> str:
    """``10.0`` -> ``"10 s"``, ``0.5`` -> ``"0.5 s"``."""
    return f"{value:g} s"


def timed_out(where: str, budget: float) -> str:
    return f"no answer from {short(where)} within {seconds(budget)}"


def refused(where: str) -> str:
    return f"{short(where)} refused the connection (nothing is listening there)"


def unresolved(name: str, why: object) -> str:
    return f"{short(name)} does not resolve ({why})"


def connection_failed(where: str, why: object) -> str:
    return f"the connection to {short(where)} failed: {why}"


def blocked(reason: str) -> str:
    # The guard's reason is already a full sentence ("... probes may not reach it").
    return reason


def unsupported(url: str, kinds: Iterable[str]) -> str:
    scheme = url.split("://", 1)[0] if "://" in url else ""
    used = f"uses the {short(scheme, 20)!r} scheme" if scheme else "has no scheme"
    return f"{short(url)} {used}; probes support {', '.join(kinds)}"


def crashed(url: str) -> str:
    return f"the probe of {short(url)} failed unexpectedly; the log has the details"


def expected_statuses(codes: tuple[int, ...]) -> str:
    if not codes:
        return "2xx or 3xx"
    texts = [str(c) for c in sorted(set(codes))]
    return texts[0] if len(texts) == 1 else f"{', '.join(texts[:-1])} or {texts[-1]}"


def bad_status(status: int, url: str, codes: tuple[int, ...]) -> str:
    return f"HTTP {status} from {short(url)} (expected {expected_statuses(codes)})"


def keyword_missing(keyword: str, url: str) -> str:
    return f"{short(keyword, 60)!r} is not in the body of {short(url)}"


def keyword_present(keyword: str, url: str) -> str:
    return f"{short(keyword, 60)!r} appears in the body of {short(url)}"


def keyword_beyond_cap(keyword: str, url: str, cap: int) -> str:
    return (
        f"the body of {short(url)} is larger than {cap // 1024} KiB and {short(keyword, 60)!r} "
        f"is not in its first {cap // 1024} KiB; probes read no further"
    )


def too_many_redirects(url: str, limit: int) -> str:
    return f"{short(url)} redirects more than {limit} times"


def bad_redirect(url: str, why: object) -> str:
    return f"{short(url)} redirects to a URL probes may not follow: {why}"


def tls_invalid(host: str, why: object) -> str:
    return f"the TLS certificate of {short(host)} is not valid: {why}"


def tls_failed(host: str, why: object) -> str:
    return f"the TLS handshake with {short(host)} failed: {why}"


def cert_expiring(host: str, expires: datetime, now: datetime) -> str:
    days = (expires - now).days
    when = "within a day" if days < 1 else f"in {days} day" + ("" if days == 1 else "s")
    return f"the TLS certificate of {short(host)} expires {when} ({expires:%Y-%m-%d %H:%M} UTC)"


def no_records(name: str) -> str:
    return f"{short(name)} has no A or AAAA records"


def records_missing(name: str, missing: Iterable[str], found: Iterable[str]) -> str:
    return f"{short(name)} resolves to {', '.join(found)}, not to {', '.join(missing)} as expected"


def bad_target(url: str, expected: str) -> str:
    return f"{short(url)} is not a valid target (expected {expected})"
