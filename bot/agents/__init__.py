"""Remote probe agents: the same prober run in other regions, reporting to the core over HTTP.

Agents
    Each agent has an id, a region (ISO 3166 code) and a key. The core lists them as ``[[agents]]
    id, region, key_env``; the key is the value of the environment variable named by ``key_env``
    (at least 16 characters), set on the core and on the agent. An agent can only write results
    for the region the core's config gives it. ``outagebot agent --region JP --core URL --key-env
    VAR [--id ID] [--spool DIR]`` runs one (``bot.agents.cli.run``).

Signed requests (agent -> core)
    Four headers: ``X-Outagebot-Agent`` (id), ``X-Outagebot-Timestamp`` (unix seconds),
    ``X-Outagebot-Request`` (a fresh id per request: 1-64 of ``A-Za-z0-9_-``; uuid4 hex) and
    ``X-Outagebot-Signature``: hex HMAC-SHA256 with the agent's key over
    ``f"{request_id}.{timestamp}.".encode() + body`` (the body is empty for GETs). The core, in
    this order: refuses a body over 1 MiB before reading it (413); refuses a missing header, an
    unknown agent, a timestamp more than 300 s off either way or a bad signature (401, compared
    with ``hmac.compare_digest``); refuses a request id already used within the window (409).
    Then JSON problems are 400 with ``{"error": "results[3].at_ms: expected an integer"}``, and
    results for another region 403. Nothing is written on any refusal; bad input is never a 5xx
    (503 means the core's database is unavailable: retry). The body is not encrypted: use https
    between machines.

``GET /api/v1/agent/assignment`` (signed)
    ``{"agent", "region", "tasks": [{"service", "target", "url", "method", "expect_status",
    "keyword", "keyword_absent", "max_latency_ms", "expect_records", "interval_seconds",
    "public_only"}], "version"}``; ``version`` is a hash of the task list; ``public_only`` tasks
    (URLs chat admins gave) are probed without the ``allow_private`` ranges.

``POST /api/v1/agent/results`` (signed)
    ``{"batch": id, "region": "JP", "results": [{"service", "target", "at_ms", "ok", "status",
    "latency_ms", "error"}]}``, 1 to 5,000 results; ``error`` is a ``bot.probes.Reason`` or null.
    Unknown service/target pairs are 400. A new batch -> ``{"accepted": n, "duplicate": false}``
    (n rows newly stored). A batch id already accepted -> ``{"accepted": 0, "duplicate": true}``:
    a resend after a lost response is not an error. Results, the batch id (``agent_batches``, so
    a replay after a core restart writes nothing) and the agent's health row are written in one
    BEGIN IMMEDIATE transaction; then the hub's ``on_results`` callback sees the records. Once
    retention has pruned a batch id, a late resend is stored as a batch again, but its rows are
    still ignored by probe_results' unique key (``accepted`` 0, and no callback).

``GET /api/v1/agent/commands?wait=SECONDS`` (signed; long poll, at most 25 s)
    ``{"recheck": [task ids], "probe": [{"request": id, "url": url}], "version": v}``, as soon as
    the core has something for this agent, else empty lists after ``wait``. A ``version`` that
    differs from the agent's assignment makes it fetch the assignment again. The core fills it
    with ``AgentHub.request_recheck(task_ids, regions=None)`` and ``AgentHub.request_probe(url,
    seconds=...)``; commands are best effort (a poll lost in transit loses them, and on-demand
    checks have a deadline anyway).

``POST /api/v1/agent/ondemand`` (signed)
    ``{"request": id, "outcome": {"ok", "status", "latency_ms", "error", "detail", "warning"}}``
    -> ``{"accepted": true}``, or false when the core no longer waits for that request.

``GET /api/v1/agents`` (unsigned)
    ``[{"id", "region", "last_seen" (ISO time or null), "lag_ms" (the newest result's age when
    its batch arrived), "results_per_second" (results accepted in the last 60 s / 60, since the
    core started), "batches", "results", "connected" (a request seen within 2 probe intervals)}]``.

The agent's side
    Every batch is written to the spool directory (temporary file, fsync, rename) before it is
    sent, and deleted only after a 200 (``duplicate`` included): nothing is lost while the core is
    down, nothing is stored twice when either side restarts. Connection errors, timeouts, 5xx,
    401 (key or clock: the operator's to fix), 404 and 409 keep the batch and back off; 400, 403
    and 413 move it to ``spool/rejected/`` with a note. The core's own region is probed by an
    in-process agent over ``LocalLink`` (``AgentHub.local_link``): same code, no HTTP, no key.

Modules: ``protocol`` (names, limits, signing), ``wire`` (JSON and its checks), ``auth``
(keys, signatures, replays), ``hub`` + ``mailbox`` (the core's side), ``routes`` (aiohttp),
``link`` + ``http_link`` (how an agent reaches the core), ``spool``, ``client`` (``Agent``,
``run_agent``), ``local`` (``LocalAgent``, the core's own region), ``stats``, ``cli``.
"""

from bot.agents.auth import Credential, MissingKey, Peer, load_credentials
from bot.agents.client import Agent, AgentError, run_agent
from bot.agents.hub import AgentAnswer, AgentHub, AgentStatus
from bot.agents.link import BatchRejected, CoreLink, CoreUnavailable, LocalLink
from bot.agents.local import LocalAgent
from bot.agents.routes import add_agent_routes
from bot.agents.spool import DiskSpool, MemorySpool

__all__ = [
    "Agent",
    "AgentAnswer",
    "AgentError",
    "AgentHub",
    "AgentStatus",
    "BatchRejected",
    "CoreLink",
    "CoreUnavailable",
    "Credential",
    "DiskSpool",
    "LocalAgent",
    "LocalLink",
    "MemorySpool",
    "MissingKey",
    "Peer",
    "add_agent_routes",
    "load_credentials",
    "run_agent",
]
