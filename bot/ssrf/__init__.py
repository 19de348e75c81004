"""The SSRF guard for every socket opened towards a configured or user-supplied URL.

Guild and workspace admins add probe targets, and each of them is an untrusted tenant
(RELIABILITY.md, "Probing user-supplied URLs (SSRF)"). ``addresses`` decides which addresses,
ports and schemes a probe may reach; ``session`` wires that decision into aiohttp at connect time.
Loopback and private ranges are reachable only when the operator lists them in
``[probes] allow_private`` (tests and the offline demo need loopback), never by chat.
"""

from bot.ssrf.addresses import DEFAULT_PORTS, Blocked, Policy, check_address, check_url, parse_host
from bot.ssrf.session import (
    DEFAULT_TIMEOUT,
    describe,
    make_connector,
    make_session,
    make_socket_factory,
)

__all__ = [
    "DEFAULT_PORTS",
    "DEFAULT_TIMEOUT",
    "Blocked",
    "Policy",
    "check_address",
    "check_url",
    "describe",
    "make_connector",
    "make_session",
    "make_socket_factory",
    "parse_host",
]
