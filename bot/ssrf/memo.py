"""SSRF guard, part 3: the guard's own decisions, remembered for a hot path (no new rules).

The lean probe engine (``bot.probes.dial``) asks the guard about every URL and every address it
dials, thousands of times a second, and mostly about the same few. ``check_url`` and
``check_endpoint`` are pure functions of their arguments and a frozen ``Policy``, so their verdict
for the exact same URL string, or the exact same numeric address and port, can be remembered:
the address checked is still the address dialled, every time (RELIABILITY.md); only the cost of
deciding again is saved. Nothing here decides anything itself.
"""

from __future__ import annotations

from typing import Final

from bot.ssrf.addresses import Blocked, Policy, check_endpoint, check_url

# Bounded: a tenant can add many targets, and a DNS name many answers. When full, start over
# (simpler than LRU bookkeeping on every hit; a refill costs one real check per entry).
MAX_ENTRIES: Final = 4096


class Verdicts:
    """``check_url`` and ``check_endpoint`` for one ``Policy``, each verdict remembered.

    A refusal is remembered as its reason and raised again as a fresh ``Blocked``.
    """

    __slots__ = ("_endpoints", "_urls", "policy")

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._urls: dict[str, str | None] = {}
        self._endpoints: dict[tuple[str, int], str | None] = {}

    def check_url(self, url: str) -> None:
        """``bot.ssrf.check_url(url, self.policy)``."""
        try:
            reason = self._urls[url]
        except KeyError:
            reason = _url_verdict(url, self.policy)
            if len(self._urls) >= MAX_ENTRIES:
                self._urls.clear()
            self._urls[url] = reason
        if reason is not None:
            raise Blocked(reason)

    def check_endpoint(self, host: str, port: int) -> None:
        """``check_endpoint(host, port, self.policy)``: the connect-time check."""
        key = (host, port)
        try:
            reason = self._endpoints[key]
        except KeyError:
            try:
                check_endpoint(host, port, self.policy)
            except Blocked as exc:
                reason = exc.reason
            else:
                reason = None
            if len(self._endpoints) >= MAX_ENTRIES:
                self._endpoints.clear()
            self._endpoints[key] = reason
        if reason is not None:
            raise Blocked(reason)


def _url_verdict(url: str, policy: Policy) -> str | None:
    try:
        check_url(url, policy)
    except Blocked as exc:
        return exc.reason
    return None
