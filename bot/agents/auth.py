"""Who is calling: agent keys, request signatures, the timestamp window and replayed request ids.

RELIABILITY.md "Authenticity": a key per agent; HMAC-SHA256 over ``id.timestamp.body``;
timestamps more than 300 s off are refused; request ids are remembered for the window; digests are
compared with ``hmac.compare_digest``. Every refusal is a ``BadInput`` with a 401 (or 409 for a
replay) whose message helps the operator without helping a forger (no expected signature, no key).
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from bot.agents.protocol import (
    AGENT_HEADER,
    MIN_KEY_LENGTH,
    REQUEST_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    TOKEN,
    WINDOW_SECONDS,
)
from bot.agents.wire import BadInput
from bot.config import AgentSettings

_TIMESTAMP: Final = re.compile(r"[0-9]{1,12}", re.ASCII)
_SIGNATURE: Final = re.compile(r"[0-9a-fA-F]{64}", re.ASCII)


@dataclass(frozen=True, slots=True)
class Peer:
    """An agent the hub talks to: a remote one (a Credential) or the core's in-process one."""

    agent_id: str
    region: str


@dataclass(frozen=True, slots=True)
class Credential(Peer):
    """A remote agent as the core knows it. ``repr`` leaves the key out, so logging one is safe."""

    key: bytes = field(repr=False)


class MissingKey(Exception):
    """An agent's key variable is unset or too short; the message names the config key."""


def load_key(var: str, environ: Mapping[str, str], *, where: str) -> bytes:
    """The key in ``environ[var]``, checked; ``where`` names the setting for the message."""
    value = environ.get(var)
    if not value:
        raise MissingKey(
            f"{where}: the environment variable {var} is not set; set it to the agent's key "
            f"(at least {MIN_KEY_LENGTH} random characters, the same on the core and the agent)"
        )
    if len(value) < MIN_KEY_LENGTH:
        raise MissingKey(
            f"{where}: the key in {var} is {len(value)} characters; use at least "
            f"{MIN_KEY_LENGTH} random characters (e.g. `python -c 'import secrets; "
            "print(secrets.token_hex(32))'`)"
        )
    return value.encode()


def load_credentials(
    agents: Sequence[AgentSettings], environ: Mapping[str, str]
) -> list[Credential]:
    """Credentials for every ``[[agents]]`` entry; raises MissingKey naming the first bad one."""
    return [
        Credential(a.id, a.region, load_key(a.key_env, environ, where=f"agents[{i}].key_env"))
        for i, a in enumerate(agents)
    ]


class ReplayCache:
    """Request ids seen recently, each kept until its timestamp falls out of the window."""

    def __init__(self) -> None:
        self._expiry: dict[tuple[str, str], float] = {}
        self._heap: list[tuple[float, str, str]] = []

    def __len__(self) -> int:
        return len(self._expiry)

    def add(self, agent_id: str, request_id: str, *, expires: float, now: float) -> bool:
        """Remember the id; False if it was already there (a replay)."""
        self._prune(now)
        key = (agent_id, request_id)
        if key in self._expiry:
            return False
        self._expiry[key] = expires
        heapq.heappush(self._heap, (expires, agent_id, request_id))
        return True

    def _prune(self, now: float) -> None:
        while self._heap and self._heap[0][0] < now:
            _, agent_id, request_id = heapq.heappop(self._heap)
            self._expiry.pop((agent_id, request_id), None)


class Verifier:
    """Checks a signed request's headers and body; returns the calling agent's credential."""

    def __init__(
        self, credentials: Sequence[Credential], *, clock: Callable[[], float] = time.time
    ) -> None:
        self._by_id = {c.agent_id: c for c in credentials}
        self._clock = clock
        self.seen = ReplayCache()

    def known(self, agent_id: str) -> Credential | None:
        return self._by_id.get(agent_id)

    def verify(self, headers: Mapping[str, str], body: bytes) -> Credential:
        agent_id = _header(headers, AGENT_HEADER)
        stamp = _header(headers, TIMESTAMP_HEADER)
        request_id = _header(headers, REQUEST_HEADER)
        signature = _header(headers, SIGNATURE_HEADER)
        cred = self._by_id.get(agent_id)
        if cred is None:
            raise BadInput(401, f"{AGENT_HEADER}: unknown agent {agent_id[:64]!r}")
        if _TIMESTAMP.fullmatch(stamp) is None:
            raise BadInput(401, f"{TIMESTAMP_HEADER}: expected unix seconds (digits only)")
        now = self._clock()
        skew = int(stamp) - now
        if abs(skew) > WINDOW_SECONDS:
            raise BadInput(
                401,
                f"{TIMESTAMP_HEADER}: {abs(skew):.0f} s {'ahead of' if skew > 0 else 'behind'} "
                f"the core's clock (at most {WINDOW_SECONDS} s allowed); check the agent's clock",
            )
        if TOKEN.fullmatch(request_id) is None:
            raise BadInput(401, f"{REQUEST_HEADER}: expected 1-64 characters of A-Z, a-z, 0-9, _-")
        if _SIGNATURE.fullmatch(signature) is None:
            raise BadInput(401, f"{SIGNATURE_HEADER}: expected 64 hex digits (HMAC-SHA256)")
        message = f"{request_id}.{stamp}.".encode() + body
        expected = hmac.new(cred.key, message, hashlib.sha256).digest()
        if not hmac.compare_digest(expected, bytes.fromhex(signature)):
            raise BadInput(401, "bad signature: check that the agent and the core use the same key")
        # Only now, once the caller proved it holds the key, may it take up memory.
        if not self.seen.add(
            agent_id, request_id, expires=int(stamp) + WINDOW_SECONDS + 1, now=now
        ):
            raise BadInput(409, f"{REQUEST_HEADER}: this request id was already used")
        return cred


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if not value:
        raise BadInput(401, f"{name}: missing; agent requests must be signed")
    return value
