"""The agent protocol's constants and its request signature (``bot.agents`` tells the story).

Both sides import this one module, so a header name or a limit cannot drift between the agent and
the core. Signing is pure: bytes in, hex out.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
import uuid
from typing import Final

PREFIX: Final = "/api/v1/agent"
ASSIGNMENT_PATH: Final = f"{PREFIX}/assignment"
RESULTS_PATH: Final = f"{PREFIX}/results"
COMMANDS_PATH: Final = f"{PREFIX}/commands"
ONDEMAND_PATH: Final = f"{PREFIX}/ondemand"
AGENTS_PATH: Final = "/api/v1/agents"

AGENT_HEADER: Final = "X-Outagebot-Agent"
TIMESTAMP_HEADER: Final = "X-Outagebot-Timestamp"
REQUEST_HEADER: Final = "X-Outagebot-Request"
SIGNATURE_HEADER: Final = "X-Outagebot-Signature"

# RELIABILITY.md "Authenticity": timestamps more than 300 s off either way are refused, and
# request ids are remembered for as long as their timestamp could still be accepted.
WINDOW_SECONDS: Final = 300
# Bodies are capped before a byte is parsed. 5,000 results at ~150 bytes each fit in 1 MiB.
MAX_BODY_BYTES: Final = 1024 * 1024
MAX_RESULTS: Final = 5_000
# A long poll holds a connection; 25 s stays under the usual 30 s proxy idle timeouts.
MAX_WAIT_SECONDS: Final = 25.0
# The shortest key we accept: HMAC with a guessable key authenticates nothing.
MIN_KEY_LENGTH: Final = 16

# Ids (agent, request, batch) are short ASCII tokens, so they are safe in logs, headers and keys.
TOKEN: Final = re.compile(r"[A-Za-z0-9_-]{1,64}", re.ASCII)
_AGENT_ID: Final = re.compile(r"[a-z0-9][a-z0-9-]{0,31}", re.ASCII)


def is_agent_id(value: str) -> bool:
    """The same rule as ``[[agents]] id`` in the config."""
    return _AGENT_ID.fullmatch(value) is not None


def new_id() -> str:
    """A request or batch id: 128 random bits, hex."""
    return uuid.uuid4().hex


def sign(key: bytes, request_id: str, timestamp: str, body: bytes) -> str:
    """Hex HMAC-SHA256 over ``request_id.timestamp.`` + body."""
    message = f"{request_id}.{timestamp}.".encode() + body
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def signed_headers(
    *,
    agent_id: str,
    key: bytes,
    body: bytes,
    now: float | None = None,
    request_id: str | None = None,
) -> dict[str, str]:
    """The four headers of a signed request; a fresh request id unless one is given."""
    rid = request_id or new_id()
    stamp = str(int(time.time() if now is None else now))
    return {
        AGENT_HEADER: agent_id,
        TIMESTAMP_HEADER: stamp,
        REQUEST_HEADER: rid,
        SIGNATURE_HEADER: sign(key, rid, stamp, body),
    }
