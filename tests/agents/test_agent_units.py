"""Pure parts of the agent protocol: the signature, the replay window, the wire codecs, the spool
files and the mailbox.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from pathlib import Path

import pytest

from bot.agents.auth import Credential, MissingKey, ReplayCache, load_credentials
from bot.agents.mailbox import Mailbox
from bot.agents.protocol import sign, signed_headers
from bot.agents.spool import DiskSpool
from bot.agents.wire import (
    BadInput,
    ProbeRequest,
    batch_body,
    loads,
    parse_assignment,
    parse_batch_head,
    parse_results,
    task_json,
    tasks_version,
)
from bot.config import AgentSettings
from bot.model import Target
from bot.probes.base import Outcome, Reason
from bot.probing.tasks import ProbeRecord, ProbeTask


def test_signature_is_hmac_sha256_over_id_timestamp_body() -> None:
    key, body = b"k" * 16, b'{"a":1}'
    expected = hmac.new(key, b"req1.1700000000." + body, hashlib.sha256).hexdigest()
    assert sign(key, "req1", "1700000000", body) == expected
    headers = signed_headers(
        agent_id="jp-1", key=key, body=body, now=1700000000.9, request_id="req1"
    )
    assert headers["X-Outagebot-Timestamp"] == "1700000000"
    assert headers["X-Outagebot-Signature"] == expected


def test_credentials_never_show_the_key() -> None:
    cred = Credential("jp-1", "JP", b"super-secret-key-123")
    assert "super-secret" not in repr(cred)


def test_missing_and_short_keys_name_the_setting() -> None:
    agents = [AgentSettings(id="jp-1", region="JP", key_env="JP_KEY")]
    with pytest.raises(MissingKey, match=r"agents\[0\]\.key_env: .*JP_KEY is not set"):
        load_credentials(agents, {})
    with pytest.raises(MissingKey, match="at least 16"):
        load_credentials(agents, {"JP_KEY": "short"})
    [cred] = load_credentials(agents, {"JP_KEY": "x" * 16})
    assert (cred.agent_id, cred.region, cred.key) == ("jp-1", "JP", b"x" * 16)


def test_replay_cache_forgets_ids_after_their_window() -> None:
    cache = ReplayCache()
    assert cache.add("a", "r1", expires=100.0, now=0.0)
    assert not cache.add("a", "r1", expires=100.0, now=50.0)  # a replay inside the window
    assert cache.add("b", "r1", expires=100.0, now=50.0)  # ids are per agent
    assert cache.add("a", "r2", expires=300.0, now=101.0)
    assert len(cache) == 1  # r1 of both agents expired and was dropped


def test_batch_round_trip() -> None:
    record = ProbeRecord(
        "acme", "web", "JP", 1_700_000_000_123, Outcome(False, 503, 12.5, Reason.STATUS)
    )
    batch_id, region, raw = parse_batch_head(loads(batch_body("b1", "JP", [record])))
    assert (batch_id, region) == ("b1", "JP")
    assert parse_results(raw, region, now_ms=1_700_000_000_200) == (record,)


@pytest.mark.parametrize(
    "body",
    [b"", b"nul", b"NaN", b'{"x": Infinity}', b"[" * 50_000, '"é"'.encode("latin-1")],
    ids=["empty", "truncated", "NaN", "Infinity", "deep", "latin-1"],
)
def test_loads_refuses_with_bad_input_only(body: bytes) -> None:
    with pytest.raises(BadInput) as info:
        loads(body)
    assert info.value.status == 400


def test_assignment_round_trip_and_version() -> None:
    task = ProbeTask(
        "acme",
        Target("web", "https://acme.test/", "HEAD", (200, 204), "ok", "error", 800.0, 30, ()),
        30,
    )
    tasks = [task_json(task)]
    doc = {"agent": "jp-1", "region": "JP", "tasks": tasks, "version": tasks_version(tasks)}
    assignment = parse_assignment(json.loads(json.dumps(doc)))
    assert assignment.tasks == (task,)
    assert tasks_version(tasks) != tasks_version([{**tasks[0], "interval_seconds": 60}])
    with pytest.raises(BadInput, match=r"tasks\[0\]\.interval_seconds"):
        parse_assignment({**doc, "tasks": [{**tasks[0], "interval_seconds": "30"}]})


async def test_spool_files_are_atomic_and_ordered(tmp_path: Path) -> None:
    spool = await DiskSpool.open(tmp_path)
    await spool.put("first", b"1")
    await spool.put("second", b"2")
    spool.close()
    (tmp_path / "00000000000000000000-torn.json.tmp").write_bytes(b"{half")  # a crash mid-write
    spool = await DiskSpool.open(tmp_path)
    try:
        assert not list(tmp_path.glob("*.tmp"))
        first = await spool.oldest()
        assert first is not None and (first.batch_id, first.body) == ("first", b"1")
        await spool.done(first)
        second = await spool.oldest()
        assert second is not None and second.batch_id == "second"
        await spool.reject(second, "400: bad")
        assert await spool.oldest() is None and len(spool) == 0
        assert (tmp_path / "rejected" / (second.name + ".why")).read_text() == "400: bad\n"
    finally:
        spool.close()


async def test_spool_cap_drops_the_oldest(tmp_path: Path) -> None:
    spool = await DiskSpool.open(tmp_path, max_batches=2)
    try:
        for name in ("a", "b", "c"):
            await spool.put(name, name.encode())
        oldest = await spool.oldest()
        assert len(spool) == 2 and oldest is not None and oldest.batch_id == "b"
        assert len(list(tmp_path.glob("*.json"))) == 2
    finally:
        spool.close()


async def test_mailbox_wakes_a_waiter_and_merges_rechecks() -> None:
    box = Mailbox()
    waiter = asyncio.create_task(box.wait(30))
    box.recheck(["t1", "t2"])
    box.recheck(["t1"])
    box.probe(ProbeRequest("r1", "https://x.test/"))
    box.probe(ProbeRequest("r2", "https://y.test/"))
    box.forget("r1")
    await asyncio.wait_for(waiter, 5)
    commands = box.take("v1")
    assert commands.recheck == ("t1", "t2")
    assert commands.probe == (ProbeRequest("r2", "https://y.test/"),)
    assert commands.version == "v1" and box.empty()
