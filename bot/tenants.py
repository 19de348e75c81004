"""The catalog as each guild or workspace sees it: the config catalog plus services its admins add.

``/service add`` lets a server's admins watch their own things (an intranet, a game server)
beside the shared catalog. Those services are visible only inside that guild or workspace (data
is scoped per tenant), cannot shadow a catalog service or another of theirs, are capped per
tenant, and their URLs are checked against the public SSRF policy here, before any socket
exists, and probed under it later (``ProbeTask.public_only``): a chat admin never reaches the
operator's private ranges.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bot.model import Catalog, Service, Target
from bot.resolve import Resolver
from bot.ssrf import Blocked, Policy, check_url
from bot.store import Store
from bot.text import fold

__all__ = ["KEY_PATTERN", "TenantCatalogs", "TenantServiceError", "scope_of"]

KEY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
MAX_NAME = 64
MAX_ALIASES = 5


class TenantServiceError(Exception):
    """A /service change was refused; ``key`` and ``params`` form the message to show."""

    def __init__(self, key: str, /, **params: object) -> None:
        super().__init__(key)
        self.key = key
        self.params = params


@dataclass(frozen=True, slots=True)
class ServiceChange:
    """What an admin typed for /service add or edit (None: keep the current value)."""

    key: str
    name: str | None = None
    url: str | None = None
    aliases: tuple[str, ...] | None = None


def scope_of(platform: str, tenant: str) -> str | None:
    """The scope of a guild or workspace; None in direct messages (the shared catalog only)."""
    return f"{platform}:{tenant}" if tenant else None


class TenantCatalogs:
    def __init__(
        self,
        catalog: Catalog,
        store: Store,
        *,
        policy: Policy,
        limit: int,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.catalog = catalog
        self.shared = Resolver(catalog)
        self._store = store
        self._policy = policy  # the public policy: no allow_private, whatever the config says
        self._limit = limit
        self.on_change = on_change  # e.g. re-derive the probe tasks
        self._services: dict[str, dict[str, Service]] = {}  # scope -> typed key -> service
        self._resolvers: dict[str, Resolver] = {}

    async def load(self) -> None:
        self._services.clear()
        self._resolvers.clear()
        for scope, svc in await self._store.tenant_services():
            self._services.setdefault(scope, {})[typed_key(svc)] = svc

    def resolver(self, platform: str, tenant: str) -> Resolver:
        scope = scope_of(platform, tenant)
        if scope is None or scope not in self._services:
            return self.shared
        found = self._resolvers.get(scope)
        if found is None:
            own = tuple(self._services[scope].values())
            found = self._resolvers[scope] = Resolver(Catalog(self.catalog.services + own))
        return found

    def services(self, platform: str, tenant: str) -> list[Service]:
        scope = scope_of(platform, tenant)
        return list(self._services.get(scope, {}).values()) if scope else []

    def all_services(self) -> list[Service]:
        """Every tenant's services (for probing); their keys are unique references."""
        return [svc for own in self._services.values() for svc in own.values()]

    async def add(self, platform: str, tenant: str, change: ServiceChange) -> Service:
        scope = _require_scope(platform, tenant)
        own = self._services.get(scope, {})
        if not KEY_PATTERN.match(change.key):
            raise TenantServiceError("service.bad_key", key=change.key[:40])
        if change.key in own:
            raise TenantServiceError("service.exists", key=change.key)
        if len(own) >= self._limit:
            raise TenantServiceError("service.limit", limit=self._limit)
        if change.url is None:
            raise TenantServiceError("service.url_required")
        svc = self._build(scope, change, name=change.name or change.key, url=change.url)
        self._check_names(platform, tenant, svc, replacing=None)
        await self._save(scope, svc)
        return svc

    async def edit(self, platform: str, tenant: str, change: ServiceChange) -> Service:
        scope = _require_scope(platform, tenant)
        current = self._services.get(scope, {}).get(change.key)
        if current is None:
            raise TenantServiceError("service.not_found", key=change.key[:40])
        url = change.url or current.targets[0].url
        svc = self._build(
            scope,
            ServiceChange(
                change.key,
                change.name or current.name,
                url,
                change.aliases if change.aliases is not None else tuple(_own_aliases(current)),
            ),
            name=change.name or current.name,
            url=url,
        )
        self._check_names(platform, tenant, svc, replacing=current)
        await self._save(scope, svc)
        return svc

    async def remove(self, platform: str, tenant: str, key: str) -> Service:
        scope = _require_scope(platform, tenant)
        current = self._services.get(scope, {}).get(key)
        if current is None:
            raise TenantServiceError("service.not_found", key=key[:40])
        await self._store.remove_tenant_service(scope, current.key)
        del self._services[scope][key]
        self._changed(scope)
        return current

    # ---- helpers ---------------------------------------------------------------------------

    def _build(self, scope: str, change: ServiceChange, *, name: str, url: str) -> Service:
        name = name.strip()
        if not name or len(name) > MAX_NAME:
            raise TenantServiceError("service.bad_name", limit=MAX_NAME)
        if "://" not in url:
            url = f"https://{url}"
        try:
            check_url(url, self._policy)
        except Blocked as exc:
            reason = exc.reason
            raise TenantServiceError("service.url_refused", url=url[:200], reason=reason) from None
        aliases = tuple(a.strip() for a in (change.aliases or ()) if a.strip())
        if len(aliases) > MAX_ALIASES or any(len(a) > MAX_NAME for a in aliases):
            raise TenantServiceError("service.bad_aliases", limit=MAX_ALIASES)
        # The typed key is an alias too, so "/isitdown intranet" finds "scope/intranet".
        return Service(
            key=f"{scope}/{change.key}",
            name=name,
            aliases=(change.key, *aliases),
            targets=(Target("web", url),),
        )

    def _check_names(
        self, platform: str, tenant: str, svc: Service, *, replacing: Service | None
    ) -> None:
        resolver = self.resolver(platform, tenant)
        for word in (svc.name, *svc.aliases):
            other = resolver.resolve(word)
            if other is not None and other != replacing and fold(word):
                raise TenantServiceError("service.name_taken", word=word, other=other.name)

    async def _save(self, scope: str, svc: Service) -> None:
        await self._store.save_tenant_service(scope, svc)
        self._services.setdefault(scope, {})[typed_key(svc)] = svc
        self._changed(scope)

    def _changed(self, scope: str) -> None:
        self._resolvers.pop(scope, None)
        if self.on_change is not None:
            self.on_change()


def typed_key(svc: Service) -> str:
    """The key an admin typed (the part after ``scope/``)."""
    return svc.key.rpartition("/")[2]


def _own_aliases(svc: Service) -> Sequence[str]:
    return svc.aliases[1:]  # the first alias is the typed key, added back by _build


def _require_scope(platform: str, tenant: str) -> str:
    scope = scope_of(platform, tenant)
    if scope is None:
        raise TenantServiceError("service.dm")
    return scope
