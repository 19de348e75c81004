"""Who clicked: users.info (cached briefly) reduced to admin rights, language and region.

Slack has no per-command permissions, so admin commands rely on what users.info says at run time
(``is_admin`` / ``is_owner``, or the ``[slack] admins`` list); guests (``is_restricted``,
``is_ultra_restricted``) are never admins, listed or not. The region for reports comes from the
user's timezone, because Slack's locale is a language setting ("en-US" for most of the world).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import ClientError
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

__all__ = ["SlackUser", "UserDirectory", "invocation_locale", "region_from_tz"]

log = logging.getLogger(__name__)

# Exact IANA names of the common zones; whole continents below. A zone missing here means
# "no region from the timezone" and the workspace default applies, never a guess.
_TZ_REGIONS = {
    "Europe/London": "GB",
    "Europe/Belfast": "GB",
    "Europe/Dublin": "IE",
    "Europe/Paris": "FR",
    "Europe/Berlin": "DE",
    "Europe/Madrid": "ES",
    "Europe/Rome": "IT",
    "Europe/Amsterdam": "NL",
    "Europe/Brussels": "BE",
    "Europe/Luxembourg": "LU",
    "Europe/Zurich": "CH",
    "Europe/Vienna": "AT",
    "Europe/Stockholm": "SE",
    "Europe/Oslo": "NO",
    "Europe/Copenhagen": "DK",
    "Europe/Helsinki": "FI",
    "Europe/Warsaw": "PL",
    "Europe/Lisbon": "PT",
    "Europe/Prague": "CZ",
    "Europe/Budapest": "HU",
    "Europe/Bucharest": "RO",
    "Europe/Athens": "GR",
    "Europe/Istanbul": "TR",
    "Europe/Moscow": "RU",
    "Europe/Kiev": "UA",
    "Europe/Kyiv": "UA",
    "Asia/Tokyo": "JP",
    "Asia/Seoul": "KR",
    "Asia/Shanghai": "CN",
    "Asia/Hong_Kong": "HK",
    "Asia/Taipei": "TW",
    "Asia/Singapore": "SG",
    "Asia/Kolkata": "IN",
    "Asia/Calcutta": "IN",
    "Asia/Bangkok": "TH",
    "Asia/Jakarta": "ID",
    "Asia/Manila": "PH",
    "Asia/Ho_Chi_Minh": "VN",
    "Asia/Saigon": "VN",
    "Asia/Kuala_Lumpur": "MY",
    "Asia/Dubai": "AE",
    "Asia/Jerusalem": "IL",
    "Asia/Tel_Aviv": "IL",
    "Asia/Riyadh": "SA",
    "Pacific/Auckland": "NZ",
    "Pacific/Honolulu": "US",
    "Africa/Johannesburg": "ZA",
    "Africa/Lagos": "NG",
    "Africa/Cairo": "EG",
    "America/Toronto": "CA",
    "America/Vancouver": "CA",
    "America/Edmonton": "CA",
    "America/Winnipeg": "CA",
    "America/Halifax": "CA",
    "America/St_Johns": "CA",
    "America/Mexico_City": "MX",
    "America/Sao_Paulo": "BR",
    "America/Argentina/Buenos_Aires": "AR",
    "America/Buenos_Aires": "AR",
    "America/Bogota": "CO",
    "America/Santiago": "CL",
    "America/Lima": "PE",
}
# Slack users in the Americas overwhelmingly pick the US zones; the rest are listed above.
_TZ_PREFIXES = (("America/", "US"), ("US/", "US"), ("Australia/", "AU"), ("Canada/", "CA"))


def region_from_tz(tz: str | None) -> str | None:
    """``Asia/Tokyo`` -> ``JP``; None for a zone we cannot place in one country."""
    if not tz:
        return None
    if tz in _TZ_REGIONS:
        return _TZ_REGIONS[tz]
    for prefix, region in _TZ_PREFIXES:
        if tz.startswith(prefix):
            return region
    return None


@dataclass(frozen=True, slots=True)
class SlackUser:
    id: str
    locale: str | None = None  # Slack's language setting, "fr-FR"
    tz: str | None = None  # IANA zone, "Asia/Tokyo"
    is_admin: bool = False  # workspace admin or owner
    is_guest: bool = False  # single- or multi-channel guest


def invocation_locale(user: SlackUser) -> str | None:
    """The Invocation's locale: the user's language, and the region only from their timezone.

    ``fr-FR`` in Tokyo becomes ``fr-JP``; with no placeable timezone the language gets the
    BCP 47 private-use subtag ``x-notz`` ("fr-x-notz"), which names no country, so the command
    falls back to the workspace's default region rather than reading a country into a language
    setting (a bare "fr" would be taken for France). ``und`` stands in for an unknown language.
    """
    language = (user.locale or "").replace("_", "-").split("-")[0].lower() or None
    region = region_from_tz(user.tz)
    if region is None:
        return None if language is None else f"{language}-x-notz"
    return f"{language or 'und'}-{region}"


class UserDirectory:
    """users.info with a short cache; one request per user at a time, however many clicks."""

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        ttl: float = 300.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._cache: OrderedDict[str, tuple[float, SlackUser]] = OrderedDict()
        self._pending: dict[str, asyncio.Future[SlackUser]] = {}

    async def get(self, user_id: str) -> SlackUser:
        hit = self._cache.get(user_id)
        if hit is not None and hit[0] > self._clock():
            return hit[1]
        pending = self._pending.get(user_id)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[SlackUser] = asyncio.get_running_loop().create_future()
        self._pending[user_id] = future
        try:
            user = await self._fetch(user_id)
            future.set_result(user)
        finally:
            del self._pending[user_id]
            if not future.done():
                future.cancel()
        return user

    async def _fetch(self, user_id: str) -> SlackUser:
        try:
            response = await self._client.users_info(user=user_id, include_locale=True)
        except (SlackApiError, ClientError, TimeoutError) as exc:
            # Safe defaults: no workspace admin rights (only the operator's [slack] admins list
            # still counts), no guessed region. Not cached, so the next command asks again.
            log.warning("users.info failed user=%s error=%s", user_id, _reason(exc))
            return SlackUser(user_id)
        data = response.get("user") or {}
        user = SlackUser(
            id=user_id,
            locale=_str(data.get("locale")),
            tz=_str(data.get("tz")),
            is_admin=bool(data.get("is_admin") or data.get("is_owner")),
            is_guest=bool(data.get("is_restricted") or data.get("is_ultra_restricted")),
        )
        self._cache[user_id] = (self._clock() + self._ttl, user)
        self._cache.move_to_end(user_id)
        while len(self._cache) > self._max:
            self._cache.popitem(last=False)
        return user


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _reason(exc: Exception) -> str:
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error", "unknown"))
    return type(exc).__name__
