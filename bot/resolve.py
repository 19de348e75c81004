"""Finding the service a user means: by key, name or alias, ignoring case and accents.

"X" finds Twitter, "twitter.com" and "https://twitter.com/home" find it too (by alias or by the
host of one of its targets). Unknown names get "did you mean" suggestions.
"""

from __future__ import annotations

import difflib
from urllib.parse import urlsplit

from bot.model import Catalog, Service
from bot.text import fold


class Resolver:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._by_name: dict[str, Service] = {}
        self._by_host: dict[str, Service] = {}
        for svc in catalog.services:
            for name in (svc.key, svc.name, *svc.aliases):
                self._by_name.setdefault(fold(name), svc)
            for target in svc.targets:
                host = (urlsplit(target.url).hostname or "").removeprefix("www.")
                if host:
                    self._by_host.setdefault(host, svc)

    def resolve(self, query: str) -> Service | None:
        folded = fold(query)
        if not folded:
            return None
        found = self._by_name.get(folded)
        if found is not None:
            return found
        host = host_of(query)
        if host:
            return self._by_name.get(host) or self._by_host.get(host)
        return None

    def suggest(self, query: str, limit: int = 3) -> list[Service]:
        folded = fold(query)
        names = difflib.get_close_matches(folded, list(self._by_name), n=limit * 2, cutoff=0.6)
        # Prefix matches help short typos like "githu" that difflib scores low.
        names += [n for n in self._by_name if folded and n.startswith(folded)]
        seen: list[Service] = []
        for name in names:
            svc = self._by_name[name]
            if svc not in seen:
                seen.append(svc)
        return seen[:limit]

    def complete(self, prefix: str, limit: int = 25) -> list[Service]:
        """Services whose key, name or alias starts with, then contains, ``prefix``."""
        folded = fold(prefix)
        starts = [s for n, s in self._by_name.items() if n.startswith(folded)]
        contains = [s for n, s in self._by_name.items() if folded in n]
        out: list[Service] = []
        for svc in starts + contains:
            if svc not in out:
                out.append(svc)
        return out[:limit]


def looks_like_url(text: str) -> bool:
    return host_of(text) is not None and (" " not in text.strip())


def host_of(text: str) -> str | None:
    """The host of ``text`` if it reads as a URL or a bare domain ("x.com"), else None."""
    value = text.strip()
    if "://" not in value:
        if "." not in value or " " in value:
            return None
        value = "http://" + value
    try:
        host = urlsplit(value).hostname
    except ValueError:
        return None
    return host.removeprefix("www.") if host else None
