"""The HTTP API over real loopback HTTP: the catalog, the verdict JSON contract, errors, health.

The server is the real ApiServer on 127.0.0.1 port 0, wired as bot/app.py wires it (settings ->
catalog -> Store -> VerdictService, Resolver) but without the app; the store is a real SQLite file.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.api import ApiServer
from bot.config import EXAMPLE_CONFIG, Settings, load_settings
from bot.model import Catalog, to_epoch
from bot.resolve import Resolver
from bot.store import (
    ImportBatch,
    ProbeRow,
    ReportRow,
    StatusRow,
    Store,
    WorksForMeRow,
)
from bot.verdicts import VerdictService

AT = datetime(2022, 12, 28, 21, 30, tzinfo=UTC)
AT_QUERY = "at=2022-12-28T21:30:00Z"
T0 = to_epoch(AT)


@dataclass
class Api:
    base: str
    http: aiohttp.ClientSession
    store: Store
    catalog: Catalog
    store_closed: bool = False

    async def get(self, path: str) -> tuple[int, str, Any]:
        async with self.http.get(self.base + path) as resp:
            body = await resp.json() if resp.content_type == "application/json" else None
            return resp.status, resp.content_type, body

    async def close_store(self) -> None:
        self.store_closed = True
        await self.store.close()


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(EXAMPLE_CONFIG)


@pytest.fixture
async def api(tmp_path: Path, settings: Settings) -> AsyncIterator[Api]:
    catalog = settings.catalog()
    store = await Store.open(tmp_path / "api.db", catalog)
    server = ApiServer(
        catalog=catalog,
        resolver=Resolver(catalog),
        store=store,
        verdicts=VerdictService(store, settings),
        host="127.0.0.1",
        port=0,
    )
    await server.start()
    assert server.port  # the bound port, never the 0 we asked for
    async with aiohttp.ClientSession(trust_env=False) as http:
        client = Api(f"http://127.0.0.1:{server.port}", http, store, catalog)
        try:
            yield client
        finally:
            await server.stop()
            if not client.store_closed:
                await store.close()


async def seed_founding_example(store: Store) -> None:
    """Twitter, 2022-12-28 21:30 UTC: the website broke, probes of the public endpoints passed.

    Downdetector showed ~10,000 US reports and ~2,500 each in Japan and the UK, mostly about the
    website; the status page said all systems operational; the owner said it works for him.
    """
    sid = store.service_id("twitter")
    assert sid is not None
    reports: list[ReportRow] = []
    for region, problem, n in [
        ("US", "website", 8_800),
        ("US", "app", 1_200),
        ("JP", "website", 2_500),
        ("GB", "website", 2_400),
        ("GB", "login", 100),
    ]:
        for i in range(n):
            at = T0 - 60 * (1 + i % 29)  # spread over the last half hour
            user = f"{region}-{problem}-{i}"
            reports.append(ReportRow(sid, at, region, problem, "discord", "", user))
    probes = [
        ProbeRow(sid, target, region, (T0 - 30 * k) * 1000 - 250, True, 200, 150.0, None)
        for region in ("US", "JP", "GB", "FR")
        for target in ("web", "api")
        for k in range(10)
    ]
    batch = ImportBatch(
        reports=reports,
        works_for_me=[WorksForMeRow(sid, T0 - 300, "US", "discord", "", "owner")],
        probes=probes,
        status=[StatusRow(sid, T0 - 600, "none", "All Systems Operational")],
    )
    counts = await store.import_batch(batch, 3600)
    assert counts.counted == 15_000 and counts.probes == 80


# ---- health and catalog ---------------------------------------------------------------------


async def test_healthz_is_ok_while_the_database_answers(api: Api) -> None:
    status, ctype, body = await api.get("/healthz")
    assert (status, ctype) == (200, "application/json")
    assert body["ok"] is True


async def test_services_lists_every_key_in_catalog_order(api: Api) -> None:
    status, _, body = await api.get("/api/v1/services")
    assert status == 200
    keys = [s["key"] for s in body["services"]]
    assert keys == [s.key for s in api.catalog.services]
    twitter = body["services"][0]
    assert twitter["key"] == "twitter" and "x" in twitter["aliases"]
    assert set(twitter["targets"]) == {"web", "api"}
    assert set(twitter) >= {"key", "name", "aliases", "targets", "status_page", "tags"}


# ---- the verdict ----------------------------------------------------------------------------

CONTRACT_TOP = {
    "service",
    "name",
    "at",
    "verdict",
    "headline",
    "regions",
    "targets",
    "problems",
    "reports",
    "works_for_me",
    "status_page",
}
CONTRACT_REGION = {
    "region",
    "state",
    "probe_ok",
    "probe_failed",
    "reports",
    "usual",
    "works_for_me",
}


async def test_verdict_json_keeps_the_contract(api: Api) -> None:
    await seed_founding_example(api.store)
    status, ctype, v = await api.get(f"/api/v1/services/twitter/verdict?{AT_QUERY}")
    assert (status, ctype) == (200, "application/json")
    # Added keys are allowed by the contract (bot/verdict_json.py); these must all be there.
    assert set(v) >= CONTRACT_TOP, CONTRACT_TOP - set(v)
    assert v["regions"] and all(set(r) >= CONTRACT_REGION for r in v["regions"])
    assert v["targets"] and all({"target", "state"} <= set(t) for t in v["targets"])
    assert v["problems"] and all({"kind", "share"} <= set(p) for p in v["problems"])
    assert {"recent", "usual", "level"} <= set(v["reports"])
    assert {"indicator", "description", "at"} <= set(v["status_page"])
    assert isinstance(v["headline"], str) and v["headline"]
    assert isinstance(v["works_for_me"], int)


async def test_founding_example_is_user_reports_not_down(api: Api) -> None:
    await seed_founding_example(api.store)
    status, _, v = await api.get(f"/api/v1/services/twitter/verdict?{AT_QUERY}")
    assert status == 200
    assert v["service"] == "twitter" and v["name"] == "X (Twitter)"
    assert v["at"] == "2022-12-28T21:30:00Z"
    assert v["verdict"] == "user_reports"
    # Most affected first; ties by region code; the quiet probing region last.
    regions = [(r["region"], r["state"], r["reports"]) for r in v["regions"]]
    assert regions == [
        ("US", "user_reports", 10_000),
        ("GB", "user_reports", 2_500),
        ("JP", "user_reports", 2_500),
        ("FR", "ok", 0),
    ]
    assert all((r["probe_ok"], r["probe_failed"]) == (20, 0) for r in v["regions"])
    assert [r["works_for_me"] for r in v["regions"]] == [1, 0, 0, 0]
    assert v["works_for_me"] == 1
    assert v["problems"][0]["kind"] == "website"
    assert v["problems"][0]["share"] == pytest.approx(13_700 / 15_000, abs=1e-4)
    assert v["reports"]["recent"] == 15_000 and v["reports"]["level"] == "problems"
    assert {t["target"]: t["state"] for t in v["targets"]} == {"web": "ok", "api": "ok"}
    assert v["status_page"] == {
        "indicator": "none",
        "description": "All Systems Operational",
        "at": "2022-12-28T21:20:00Z",
    }


async def test_verdict_before_any_evidence_is_unknown(api: Api) -> None:
    await seed_founding_example(api.store)
    _, _, v = await api.get("/api/v1/services/twitter/verdict?at=2022-12-28T20:00:00Z")
    assert v["verdict"] == "unknown"  # nothing stored before 21:00: no evidence at all
    assert v["regions"] == [] and v["status_page"] is None


@pytest.mark.parametrize("name", ["x", "X", "twitter.com", "https://twitter.com/home", "Twitter"])
async def test_aliases_resolve_to_the_service(api: Api, name: str) -> None:
    from urllib.parse import quote

    status, _, v = await api.get(f"/api/v1/services/{quote(name, safe='')}/verdict?{AT_QUERY}")
    assert status == 200
    assert v["service"] == "twitter"


async def test_unknown_service_is_404_with_a_hint(api: Api) -> None:
    status, ctype, body = await api.get("/api/v1/services/nosuch/verdict")
    assert (status, ctype) == (404, "application/json")
    assert body["error"] == "unknown service 'nosuch'"
    assert "/api/v1/services" in body["hint"]


async def test_misspelt_service_gets_a_suggestion(api: Api) -> None:
    status, _, body = await api.get("/api/v1/services/twiter/verdict")
    assert status == 404
    assert "did you mean" in body["hint"] and "twitter" in body["hint"]


@pytest.mark.parametrize(
    "key",
    [
        "a" * 5000,  # long
        "tw%00itter",  # control character
        "%E2%80%8B",  # only a zero-width space
        "%D7%98%D7%95%D7%95%D7%99%D7%98%D7%A8",  # right-to-left text
        "tw%D1%96tter",  # Cyrillic i: a confusable, must not find twitter
    ],
    ids=["long", "nul", "zero_width_only", "rtl", "confusable"],
)
async def test_hostile_service_names_are_a_clean_404(api: Api, key: str) -> None:
    status, ctype, body = await api.get(f"/api/v1/services/{key}/verdict")
    assert (status, ctype) == (404, "application/json")
    assert len(body["error"]) < 120  # the echoed name is cut short


@pytest.mark.parametrize(
    "at",
    ["yesterday", "2022-12-28T21:30:00", "", "2022-13-45T00:00:00Z", "2022-12-28T21:30:00%2B25:00"],
    ids=["word", "naive", "empty", "impossible_date", "offset_out_of_range"],
)
async def test_bad_at_is_400_with_a_hint(api: Api, at: str) -> None:
    status, ctype, body = await api.get(f"/api/v1/services/twitter/verdict?at={at}")
    assert (status, ctype) == (400, "application/json")
    assert "ISO 8601" in body["error"]
    assert "2022-12-28T21:30:00Z" in body["hint"]


# ---- storage failure ------------------------------------------------------------------------


# Regression: a closed store made Store.ping raise RuntimeError (500).
async def test_healthz_is_503_after_the_store_is_closed(api: Api) -> None:
    await api.close_store()
    status, ctype, body = await api.get("/healthz")
    assert (status, ctype) == (503, "application/json")
    assert body["ok"] is False


# Regression: a closed store made the verdict a 500.
async def test_verdict_is_503_not_500_when_the_store_is_gone(api: Api) -> None:
    await api.close_store()
    status, ctype, body = await api.get(f"/api/v1/services/twitter/verdict?{AT_QUERY}")
    assert (status, ctype) == (503, "application/json")
    assert body["error"] == "the database is unavailable"
