"""The core's agent API over real loopback HTTP: every refusal is a 4xx that writes nothing,
a good batch is stored exactly once (also across a core restart), and commands arrive promptly.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from typing import Any

import aiohttp
import pytest
from agent_harness import (
    KEY_JP,
    KEY_US,
    WEB_TASK,
    Core,
    batch,
    call,
    make_catalog,
)

from bot.agents.protocol import (
    AGENT_HEADER,
    AGENTS_PATH,
    ASSIGNMENT_PATH,
    COMMANDS_PATH,
    MAX_BODY_BYTES,
    ONDEMAND_PATH,
    REQUEST_HEADER,
    RESULTS_PATH,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    signed_headers,
)
from bot.probes.base import Reason


async def test_good_batch_is_stored_once_and_resend_is_a_duplicate(
    core: Core, http: aiohttp.ClientSession
) -> None:
    status, reply = await call(http, core, "POST", RESULTS_PATH, batch("b1", n=3))
    assert (status, reply) == (200, {"accepted": 3, "duplicate": False})
    after_first = await core.counts()
    assert after_first["probe_results"] == 3
    assert after_first["agent_batches"] == 1
    assert [(r.service, r.target, r.region) for r in core.received.records] == [
        ("acme", "web", "JP")
    ] * 3

    # A resend after a lost response: new request id and signature, same batch id.
    status, reply = await call(http, core, "POST", RESULTS_PATH, batch("b1", n=3))
    assert (status, reply) == (200, {"accepted": 0, "duplicate": True})
    assert await core.counts() == after_first
    assert len(core.received.records) == 3  # the callback saw the batch once

    rows = await core.store.agents()
    assert [(a.id, a.region, a.batches, a.results) for a in rows] == [("jp-1", "JP", 1, 3)]
    assert rows[0].lag_ms is not None and rows[0].lag_ms > 0


async def test_resend_after_core_restart_writes_nothing(
    core: Core, http: aiohttp.ClientSession
) -> None:
    assert (await call(http, core, "POST", RESULTS_PATH, batch("b7")))[0] == 200
    before = await core.counts()
    await core.stop()
    restarted = await Core(core.db, core.catalog).start()  # new hub: no memory of request ids
    try:
        status, reply = await call(http, restarted, "POST", RESULTS_PATH, batch("b7"))
        assert (status, reply) == (200, {"accepted": 0, "duplicate": True})
        assert await restarted.counts() == before
        assert restarted.received.records == []
    finally:
        await restarted.stop()


async def test_replayed_request_is_409_and_writes_nothing(
    core: Core, http: aiohttp.ClientSession
) -> None:
    body = json.dumps(batch("b2")).encode()
    headers = signed_headers(agent_id="jp-1", key=KEY_JP, body=body)
    async with http.post(core.url + RESULTS_PATH, data=body, headers=headers) as resp:
        assert resp.status == 200
    before = await core.counts()
    async with http.post(core.url + RESULTS_PATH, data=body, headers=headers) as resp:
        assert resp.status == 409
        assert "already used" in (await resp.json())["error"]
    assert await core.counts() == before


def _bad(**fields: Any) -> dict[str, Any]:
    return batch("bad", **fields)


def _results(items: list[Any]) -> dict[str, Any]:
    return {"batch": "bad", "region": "JP", "results": items}


NOW = time.time()

# (id, request kwargs for call(), expected status, a fragment of the error message)
REFUSALS: list[tuple[str, dict[str, Any], int, str]] = [
    ("wrong key", {"key": KEY_US}, 401, "bad signature"),
    ("unknown agent", {"agent": "xx-9"}, 401, "unknown agent"),
    ("missing agent", {"drop": (AGENT_HEADER,)}, 401, AGENT_HEADER),
    ("missing timestamp", {"drop": (TIMESTAMP_HEADER,)}, 401, TIMESTAMP_HEADER),
    ("missing request id", {"drop": (REQUEST_HEADER,)}, 401, REQUEST_HEADER),
    ("missing signature", {"drop": (SIGNATURE_HEADER,)}, 401, SIGNATURE_HEADER),
    ("stale timestamp", {"skew": -302}, 401, "behind"),
    ("future timestamp", {"skew": 302}, 401, "ahead of"),
    ("timestamp not digits", {"headers": {TIMESTAMP_HEADER: "1e9"}}, 401, "unix seconds"),
    ("signature not hex", {"headers": {SIGNATURE_HEADER: "zz" * 32}}, 401, "64 hex"),
    ("signature non-ascii", {"headers": {SIGNATURE_HEADER: "é" * 64}}, 401, "64 hex"),
    ("request id too long", {"request_id": "r" * 65}, 401, REQUEST_HEADER),
    ("another region", {"body": batch("bad", region="US")}, 403, "only send results for JP"),
    ("malformed json", {"body": b'{"batch": "x", '}, 400, "not valid JSON"),
    ("not utf-8", {"body": b"\xff\xfe{}"}, 400, "not valid JSON"),
    ("nested too deep", {"body": b"[" * 100_000 + b"]" * 100_000}, 400, "not valid JSON"),
    ("NaN latency", {"body": json.dumps(_bad(latency_ms=float("nan"))).encode()}, 400, "JSON"),
    ("body is a list", {"body": [1, 2]}, 400, "body: expected a JSON object"),
    ("batch id missing", {"body": {"region": "JP", "results": []}}, 400, "batch: missing"),
    ("batch id bad chars", {"body": {**_bad(), "batch": "a/b"}}, 400, "batch:"),
    ("results not a list", {"body": {**_bad(), "results": {}}}, 400, "results: expected a list"),
    ("empty results", {"body": _results([])}, 400, "empty"),
    ("too many results", {"body": batch("bad", n=5001)}, 400, "at most 5000"),
    ("result not an object", {"body": _results([7])}, 400, "results[0]: expected a JSON object"),
    ("at_ms a string", {"body": _bad(at_ms="1")}, 400, "results[0].at_ms: expected an integer"),
    ("at_ms a bool", {"body": _bad(n=1, at_ms=True)}, 400, "at_ms: expected an integer"),
    ("at_ms huge", {"body": _bad(n=1, at_ms=10**30)}, 400, "at_ms"),
    ("at_ms in the future", {"body": _bad(n=1, at_ms=int(NOW * 1000) + 86_400_000)}, 400, "at_ms"),
    ("ok a string", {"body": _bad(ok="true")}, 400, "ok: expected true or false"),
    ("status out of range", {"body": _bad(status=99)}, 400, "status"),
    ("status a float", {"body": _bad(status=200.5)}, 400, "status: expected an integer"),
    ("latency negative", {"body": _bad(latency_ms=-1)}, 400, "latency_ms"),
    ("unknown error reason", {"body": _bad(error="gremlins")}, 400, "error"),
    ("unknown service", {"body": _bad(service="nope")}, 400, "unknown service/target"),
    ("unknown target", {"body": _bad(target="ftp")}, 400, "unknown service/target"),
    ("service too long", {"body": _bad(service="s" * 1000)}, 400, "longer than"),
]


@pytest.mark.parametrize(
    ("kwargs", "expected", "fragment"),
    [r[1:] for r in REFUSALS],
    ids=[r[0] for r in REFUSALS],
)
async def test_bad_requests_are_refused_and_write_nothing(
    core: Core, http: aiohttp.ClientSession, kwargs: dict[str, Any], expected: int, fragment: str
) -> None:
    kwargs = dict(kwargs)  # the table is shared between runs
    body = kwargs.pop("body", batch("bad"))
    if "skew" in kwargs:  # relative to now, not to import time: the suite may run for a while
        kwargs["now"] = time.time() + kwargs.pop("skew")
    before = await core.counts()
    status, reply = await call(http, core, "POST", RESULTS_PATH, body, **kwargs)
    assert status == expected, reply
    assert isinstance(reply, dict) and fragment in reply["error"], reply
    assert await core.counts() == before
    assert core.received.records == []


async def test_a_good_request_after_the_refusals_still_works(
    core: Core, http: aiohttp.ClientSession
) -> None:
    # Guards the table above: its bodies fail for the stated reason, not for a broken fixture.
    status, _ = await call(http, core, "POST", RESULTS_PATH, batch("bad"))
    assert status == 200


async def test_oversize_body_is_413_before_it_is_read(core: Core) -> None:
    # Only the headers are sent: a 413 proves the core refused without waiting for the body.
    reader, writer = await asyncio.open_connection("127.0.0.1", core.port)
    writer.write(
        (
            f"POST {RESULTS_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\nContent-Length: {MAX_BODY_BYTES + 1}\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    async with asyncio.timeout(5):
        status_line = await reader.readline()
    writer.close()
    assert status_line.startswith(b"HTTP/1.1 413"), status_line
    assert (await core.counts())["probe_results"] == 0


async def test_oversize_chunked_body_is_413(core: Core, http: aiohttp.ClientSession) -> None:
    async def chunks():  # no Content-Length: the cap must hold while streaming
        for _ in range(20):
            yield b" " * (128 * 1024)

    before = await core.counts()
    headers = signed_headers(agent_id="jp-1", key=KEY_JP, body=b"")
    try:
        async with http.post(core.url + RESULTS_PATH, data=chunks(), headers=headers) as resp:
            assert resp.status == 413
    except aiohttp.ClientOSError:
        pass  # the core may close while we still write; what matters is it stored nothing
    assert await core.counts() == before


async def test_assignment_lists_the_tasks(core: Core, http: aiohttp.ClientSession) -> None:
    status, reply = await call(http, core, "GET", ASSIGNMENT_PATH)
    assert status == 200
    assert reply["agent"] == "jp-1" and reply["region"] == "JP"
    assert [(t["service"], t["target"]) for t in reply["tasks"]] == [
        ("acme", "web"),
        ("acme", "api"),
    ]
    assert set(reply["tasks"][0]) == {
        "service", "target", "url", "method", "expect_status", "keyword", "keyword_absent",
        "max_latency_ms", "expect_records", "interval_seconds", "public_only",
    }  # fmt: skip
    assert reply["version"] == core.hub.version
    status, _ = await call(http, core, "GET", ASSIGNMENT_PATH, key=KEY_US)
    assert status == 401


async def test_long_poll_delivers_a_recheck_promptly(
    core: Core, http: aiohttp.ClientSession
) -> None:
    assert (await call(http, core, "GET", ASSIGNMENT_PATH))[0] == 200  # now "connected"
    started = time.monotonic()
    poll = asyncio.create_task(call(http, core, "GET", COMMANDS_PATH, params={"wait": "20"}))
    assert core.hub.request_recheck([WEB_TASK, "probe:nope:web"]) == 1
    status, reply = await asyncio.wait_for(poll, 10)
    assert status == 200
    assert reply["recheck"] == [WEB_TASK] and reply["probe"] == []
    assert time.monotonic() - started < 10  # far less than the 20 s the poll could wait
    # Agents in other regions were not asked; rechecks for regions with no agent ask nobody.
    assert core.hub.request_recheck([WEB_TASK], regions=["US"]) == 0


async def test_long_poll_returns_empty_after_the_wait(
    core: Core, http: aiohttp.ClientSession
) -> None:
    status, reply = await call(http, core, "GET", COMMANDS_PATH, params={"wait": "0.05"})
    assert (status, reply["recheck"], reply["probe"]) == (200, [], [])
    status, reply = await call(http, core, "GET", COMMANDS_PATH, params={"wait": "soon"})
    assert status == 400 and "wait=" in reply["error"]


async def test_on_demand_probe_round_trip(core: Core, http: aiohttp.ClientSession) -> None:
    assert (await call(http, core, "GET", ASSIGNMENT_PATH))[0] == 200
    asked = asyncio.create_task(core.hub.request_probe("https://example.invalid/", seconds=10))
    status, reply = await call(http, core, "GET", COMMANDS_PATH, params={"wait": "10"})
    assert status == 200 and len(reply["probe"]) == 1
    request = reply["probe"][0]
    assert request["url"] == "https://example.invalid/"  # the agent's guard decides; not dialled
    outcome = {"ok": False, "status": None, "latency_ms": None, "error": "dns", "detail": "no"}
    answer = {"request": request["request"], "outcome": outcome}
    status, reply = await call(http, core, "POST", ONDEMAND_PATH, answer)
    assert (status, reply) == (200, {"accepted": True})
    [result] = await asyncio.wait_for(asked, 10)
    assert (result.agent_id, result.region) == ("jp-1", "JP")
    assert result.outcome is not None and result.outcome.error is Reason.DNS
    # A late answer is not an error for the agent, and changes nothing.
    status, reply = await call(http, core, "POST", ONDEMAND_PATH, answer)
    assert (status, reply) == (200, {"accepted": False})
    status, reply = await call(http, core, "POST", ONDEMAND_PATH, {"request": "x", "outcome": 1})
    assert status == 400 and "outcome" in reply["error"]


async def test_on_demand_probe_times_out_without_answers(
    core: Core, http: aiohttp.ClientSession
) -> None:
    assert await core.hub.request_probe("http://example.invalid/", seconds=0.01) == []  # nobody
    assert (await call(http, core, "GET", ASSIGNMENT_PATH))[0] == 200
    [answer] = await core.hub.request_probe("http://example.invalid/", seconds=0.01)
    assert answer.outcome is None
    with pytest.raises(ValueError, match="http"):
        await core.hub.request_probe("file:///etc/passwd", seconds=1)


async def test_agents_listing(core: Core, http: aiohttp.ClientSession) -> None:
    assert (await call(http, core, "POST", RESULTS_PATH, batch("b1", n=4)))[0] == 200
    async with http.get(core.url + AGENTS_PATH) as resp:  # unsigned on purpose
        assert resp.status == 200
        listing = {a["id"]: a for a in await resp.json()}
    jp, us = listing["jp-1"], listing["us-1"]
    assert (jp["region"], jp["batches"], jp["results"], jp["connected"]) == ("JP", 1, 4, True)
    assert jp["results_per_second"] == pytest.approx(4 / 60, abs=0.001)
    assert jp["last_seen"].endswith("Z") and jp["lag_ms"] > 0
    assert (us["connected"], us["last_seen"], us["results"]) == (False, None, 0)


async def test_restarted_core_is_not_fooled_by_unknown_catalog(tmp_path, http) -> None:
    # A core whose catalog lost the service refuses results for it (400), and stores nothing.
    core = await Core(tmp_path / "c.db", make_catalog()).start()
    try:
        core.hub.set_tasks([])
        status, reply = await call(http, core, "POST", RESULTS_PATH, batch("b9"))
        assert status == 400 and "unknown service/target" in reply["error"]
        assert (await core.counts())["probe_results"] == 0
    finally:
        await core.stop()


async def test_late_resend_after_batch_ids_were_pruned_adds_no_rows(
    core: Core, http: aiohttp.ClientSession
) -> None:
    assert (await call(http, core, "POST", RESULTS_PATH, batch("old", n=2)))[0] == 200
    # Retention forgets accepted batch ids after a while (another connection, as it would be).
    with sqlite3.connect(core.db) as conn:
        conn.execute("DELETE FROM agent_batches")
    status, reply = await call(http, core, "POST", RESULTS_PATH, batch("old", n=2))
    assert (status, reply) == (200, {"accepted": 0, "duplicate": False})
    assert (await core.counts())["probe_results"] == 2
    assert len(core.received.records) == 2  # the confirmation logic does not see them twice
