"""SSRF guard, part 1: which addresses, ports and schemes a probe may reach (pure functions).

``check_address`` and ``check_url`` refuse a target with a ``Blocked`` carrying a sentence a chat
user can read, before any socket exists. ``ipaddress.is_private``/``is_global`` are not used as a
blocklist: IPv4-mapped, IPv4-compatible, 6to4, NAT64 and Teredo forms are unwrapped and every
embedded IPv4 is checked against an explicit list of special-purpose ranges (RELIABILITY.md).
"""

from __future__ import annotations

import errno
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_network
from typing import Final

from yarl import URL

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

DEFAULT_PORTS: Final = frozenset({80, 443, 8080, 8443})


class Blocked(PermissionError):
    """A probe target refused by the SSRF policy; ``reason`` is a sentence for the user.

    It is an ``OSError`` (``PermissionError``, errno ``EACCES``) and not a bare
    ``Exception`` on purpose: aiohappyeyeballs only records ``OSError``/``RuntimeError``
    from a socket factory, so a bare exception raised for a multi-address host comes out
    of aiohttp as an ``IndexError`` (its list of recorded errors is empty). As an
    ``OSError`` it is wrapped by aiohttp in ``ClientConnectorError`` ``from`` this error,
    so callers catch ``aiohttp.ClientError`` as usual and ``describe()`` finds the reason.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(errno.EACCES, reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason

    def __reduce__(self) -> tuple[type[Blocked], tuple[str]]:
        # OSError pickles as (errno, strerror); rebuild from the reason instead.
        return (type(self), (self.reason,))


@dataclass(frozen=True)
class Policy:
    """What probes may reach. Built from config (``[probes]``), never from a chat command."""

    # Operator-listed ranges (config ``[probes] allow_private``) exempt from the blocklist.
    allow_private: tuple[IPNetwork, ...] = ()
    ports: frozenset[int] = field(default=DEFAULT_PORTS)
    # Loopback test servers bind ephemeral ports, so inside an explicitly allowed range
    # any port is fine; everywhere else only ``ports``.
    allow_any_port_for_allowed_ranges: bool = True
    schemes: tuple[str, ...] = ("http", "https")
    max_redirects: int = 3

    def __post_init__(self) -> None:
        if any(not 0 < port < 65536 for port in self.ports):
            raise ValueError(f"probe ports must be 1-65535, got {sorted(self.ports)}")
        if self.max_redirects < 0:
            raise ValueError("max_redirects must be >= 0")

    @classmethod
    def from_config(
        cls,
        allow_private: Iterable[str] = (),
        *,
        ports: Iterable[int] | None = None,
        allow_any_port_for_allowed_ranges: bool = True,
        max_redirects: int = 3,
    ) -> Policy:
        """Build a policy from config strings; a range with host bits set is a config error."""
        return cls(
            allow_private=tuple(ip_network(text, strict=True) for text in allow_private),
            ports=DEFAULT_PORTS if ports is None else frozenset(ports),
            allow_any_port_for_allowed_ranges=allow_any_port_for_allowed_ranges,
            max_redirects=max_redirects,
        )


# --- Address classification --------------------------------------------------------------
#
# RELIABILITY.md: is_private/is_global are not a blocklist (on 3.11 NAT64/6to4 forms of
# 169.254.169.254, ::127.0.0.1 and 224.0.0.1 report is_global; 100.64.0.1 is not
# is_private), so the ranges below are spelled out, from the IANA special-purpose
# registries (RFC 6890 and successors). First match wins, so narrower entries go first.

_BLOCKED_V4: Final[tuple[tuple[IPv4Network, str], ...]] = tuple(
    (IPv4Network(net), desc)
    for net, desc in (
        ("0.0.0.0/8", "in 0.0.0.0/8 ('this network'; 0.0.0.0 reaches the local host)"),
        ("10.0.0.0/8", "a private address (10.0.0.0/8)"),
        ("100.64.0.0/10", "a carrier-grade NAT address (100.64.0.0/10)"),
        ("127.0.0.0/8", "a loopback address (127.0.0.0/8)"),
        ("169.254.169.254/32", "a link-local address (cloud metadata)"),
        ("169.254.0.0/16", "a link-local address (169.254.0.0/16, home of cloud metadata)"),
        ("172.16.0.0/12", "a private address (172.16.0.0/12)"),
        ("192.0.0.0/24", "an IETF protocol assignment (192.0.0.0/24)"),
        ("192.0.2.0/24", "a documentation address (192.0.2.0/24)"),
        ("192.88.99.0/24", "a 6to4 relay anycast address (192.88.99.0/24)"),
        ("192.168.0.0/16", "a private address (192.168.0.0/16)"),
        ("198.18.0.0/15", "a benchmarking address (198.18.0.0/15)"),
        ("198.51.100.0/24", "a documentation address (198.51.100.0/24)"),
        ("203.0.113.0/24", "a documentation address (203.0.113.0/24)"),
        ("224.0.0.0/4", "a multicast address (224.0.0.0/4)"),
        ("255.255.255.255/32", "the broadcast address"),
        ("240.0.0.0/4", "a reserved address (240.0.0.0/4)"),
    )
)

_BLOCKED_V6: Final[tuple[tuple[IPv6Network, str], ...]] = tuple(
    (IPv6Network(net), desc)
    for net, desc in (
        ("::/128", "the unspecified address"),
        ("::1/128", "the IPv6 loopback address"),
        # Deprecated by RFC 4291 and dialled as plain IPv6; no legitimate probe target.
        ("::/96", "a deprecated IPv4-compatible address (::/96)"),
        ("100::/64", "a discard-only address (100::/64)"),
        # Includes Teredo (2001::/32), refused whatever IPv4 it embeds.
        ("2001::/23", "an IETF protocol assignment (2001::/23, includes Teredo)"),
        ("2001:db8::/32", "a documentation address (2001:db8::/32)"),
        ("3fff::/20", "a documentation address (3fff::/20)"),
        # Local-use NAT64 (RFC 8215) with a layout other than /96: IPv4 position unknown.
        ("64:ff9b:1::/48", "a local-use NAT64 address outside 64:ff9b:1::/96"),
        ("fc00::/7", "a unique-local address (fc00::/7)"),
        ("fe80::/10", "a link-local address (fe80::/10)"),
        ("fec0::/10", "a site-local address (fec0::/10)"),
        ("ff00::/8", "a multicast address (ff00::/8)"),
    )
)

# Ranges that only wrap an IPv4 address: their verdict is the embedded IPv4's
# (``::ffff:8.8.8.8`` is 8.8.8.8). Only the /96 layout of the RFC 8215 local-use NAT64
# prefix says where the IPv4 sits; the rest of 64:ff9b:1::/48 is refused above.
_MAPPED: Final = IPv6Network("::ffff:0:0/96")
_COMPAT: Final = IPv6Network("::/96")
_NAT64_WKP: Final = IPv6Network("64:ff9b::/96")
_NAT64_LOCAL96: Final = IPv6Network("64:ff9b:1::/96")
_SIX_TO_FOUR: Final = IPv6Network("2002::/16")
_TEREDO: Final = IPv6Network("2001::/32")
_WRAPPERS: Final = (_MAPPED, _NAT64_WKP, _NAT64_LOCAL96, _SIX_TO_FOUR)
# Everything the IANA has handed out for the public Internet is in 2000::/3; outside it,
# anything that is not a wrapper is reserved or unallocated.
_GLOBAL_UNICAST: Final = IPv6Network("2000::/3")


def _embedded_ipv4(addr: IPv6Address) -> list[tuple[str, IPv4Address]]:
    """Every IPv4 address ``addr`` carries, with how it carries it (for the reason)."""
    raw = addr.packed
    low32 = IPv4Address(raw[12:])
    if addr in _MAPPED:
        return [("an IPv4-mapped form of", low32)]
    if addr in _NAT64_WKP or addr in _NAT64_LOCAL96:
        # RFC 6052 §2.2, /96 prefix: the IPv4 is the last 32 bits.
        return [("a NAT64 form of", low32)]
    if addr in _SIX_TO_FOUR:
        # RFC 3056: 2002:AABB:CCDD::/48 routes to the IPv4 AA.BB.CC.DD.
        return [("a 6to4 address for", IPv4Address(raw[2:6]))]
    if addr in _TEREDO:
        # RFC 4380 §4: server IPv4 in bits 32-63, client IPv4 in the last 32 bits, inverted.
        client = IPv4Address(int(low32) ^ 0xFFFFFFFF)
        return [
            ("a Teredo address whose server is", IPv4Address(raw[4:8])),
            ("a Teredo address whose client is", client),
        ]
    if addr in _COMPAT and int(addr) > 1:  # :: and ::1 are not IPv4-compatible forms
        return [("an IPv4-compatible form of", low32)]
    return []


def _v4_problem(addr: IPv4Address) -> str | None:
    return next((desc for net, desc in _BLOCKED_V4 if addr in net), None)


def _v6_problem(addr: IPv6Address) -> str | None:
    """Why ``addr`` itself is refused; for wrappers, the embedded IPv4 alone decides."""
    if any(addr in wrapper for wrapper in _WRAPPERS):
        return None
    desc = next((desc for net, desc in _BLOCKED_V6 if addr in net), None)
    if desc is None and addr not in _GLOBAL_UNICAST:
        desc = "outside the global unicast range (2000::/3)"
    return desc


def _show(addr: IPAddress) -> str:
    # Python 3.11 prints ::ffff:169.254.169.254 as ::ffff:a9fe:a9fe; show the IPv4.
    if isinstance(addr, IPv6Address) and (addr in _MAPPED or (addr in _COMPAT and int(addr) > 1)):
        prefix = "::ffff:" if addr in _MAPPED else "::"
        return f"{prefix}{IPv4Address(addr.packed[12:])}"
    return str(addr)


def _in_allowed(addr: IPAddress, policy: Policy) -> bool:
    return any(addr.version == net.version and addr in net for net in policy.allow_private)


def _operator_allowed(addr: IPAddress, policy: Policy) -> bool:
    """Whether the operator listed ``addr``, or an IPv4 it embeds, in ``allow_private``."""
    if _in_allowed(addr, policy):
        return True
    return isinstance(addr, IPv6Address) and any(
        _in_allowed(v4, policy) for _, v4 in _embedded_ipv4(addr)
    )


# inet_aton(3) accepts 1-4 dot-separated parts, each decimal, octal (leading 0) or hex
# (0x); the last part fills the remaining bytes. Explicit ASCII classes: int() would
# also accept other Unicode digits, which the C library does not.
_V4_PART: Final = re.compile(r"0[xX][0-9a-fA-F]*|0[0-7]*|[1-9][0-9]*")


def _parse_inet_aton(text: str) -> IPv4Address | None:
    # A single trailing dot still names the address for URL parsers (WHATWG); treating
    # it as an IP literal can only make the check stricter.
    parts = text.removesuffix(".").split(".")
    if not 1 <= len(parts) <= 4:
        return None
    values: list[int] = []
    for part in parts:
        if not _V4_PART.fullmatch(part):
            return None
        if part[:2] in ("0x", "0X"):
            digits, base = part[2:].lstrip("0"), 16
        elif part.startswith("0"):
            digits, base = part.lstrip("0"), 8
        else:
            digits, base = part, 10
        # Bound the length before int(): no 32-bit part needs more than 11 digits, and
        # int() of a huge digit string is slow (and raises past 4300 digits).
        if len(digits) > 11:
            return None
        values.append(int(digits or "0", base))
    *head, last = values
    if any(v > 0xFF for v in head) or last >= 1 << (8 * (5 - len(values))):
        return None
    number = last
    for i, v in enumerate(head):
        number |= v << (24 - 8 * i)
    return IPv4Address(number)


def parse_host(host: str) -> IPAddress | None:
    """The IP address ``host`` denotes if it is an IP literal in any form, else ``None``.

    Recognises what inet_aton/getaddrinfo accept (``2130706433``, ``127.1``,
    ``0177.0.0.1``, ``0x7f.0.0.1``: all 127.0.0.1), bracketed IPv6 and zone ids
    (``fe80::1%eth0``, ``[fe80::1%25eth0]``; the zone is dropped). ``None`` means a DNS
    name, which is checked when its answers are dialled.
    """
    text = host
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if ":" in text:
        # The zone (``%eth0``, or ``%25eth0`` percent-encoded in URLs) picks an
        # interface; it does not change which range the address is in.
        try:
            return IPv6Address(text.partition("%")[0])
        except ValueError:
            return None
    return _parse_inet_aton(text)


def check_address(ip: str | IPv4Address | IPv6Address, policy: Policy) -> None:
    """Raise ``Blocked`` unless probes may reach ``ip`` under ``policy``.

    IPv6 forms that carry an IPv4 address (IPv4-mapped, IPv4-compatible, 6to4, NAT64,
    Teredo) are unwrapped and every embedded IPv4 is checked too (RELIABILITY.md).
    """
    if isinstance(ip, str):
        parsed = parse_host(ip)
        if parsed is None:
            # Fail closed: the factory hands us numeric sockaddrs, so this is not a probe.
            raise Blocked(f"{short(ip)} is not an IP address; probes may not reach it")
        addr: IPAddress = parsed
    elif isinstance(ip, IPv6Address):
        addr = IPv6Address(int(ip))  # drop any zone id, as above
    else:
        addr = ip
    if _in_allowed(addr, policy):
        return
    if isinstance(addr, IPv4Address):
        desc = _v4_problem(addr)
        if desc is not None:
            raise Blocked(f"{addr} is {desc}; probes may not reach it")
        return
    # ::1 would otherwise read as the IPv4-compatible form of 0.0.0.1: name it properly.
    if int(addr) <= 1:
        raise Blocked(f"{addr} is {_v6_problem(addr)}; probes may not reach it")
    for how, v4 in _embedded_ipv4(addr):
        if _in_allowed(v4, policy):
            continue
        desc = _v4_problem(v4)
        if desc is not None:
            raise Blocked(f"{_show(addr)} is {how} {v4}, which is {desc}; probes may not reach it")
    desc = _v6_problem(addr)
    if desc is not None:
        raise Blocked(f"{addr} is {desc}; probes may not reach it")


def _check_port(port: int, addr: IPAddress | None, policy: Policy) -> None:
    if port in policy.ports:
        return
    if (
        policy.allow_any_port_for_allowed_ranges
        and addr is not None
        and _operator_allowed(addr, policy)
    ):
        return
    allowed = ", ".join(str(p) for p in sorted(policy.ports))
    raise Blocked(f"port {port} is not allowed for probes (allowed: {allowed})")


def check_endpoint(host: str, port: int, policy: Policy) -> None:
    """The connect-time check: one numeric address and port about to be dialled."""
    addr = parse_host(host)
    if addr is None:
        raise Blocked(f"{short(host)} is not an IP address; probes may not reach it")
    check_address(addr, policy)
    _check_port(port, addr, policy)


def short(text: str, limit: int = 80) -> str:
    # Reasons go back to chat; a tenant's 4 KiB URL should not come back verbatim.
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_url(url: str, policy: Policy) -> None:
    """Raise ``Blocked`` unless ``url`` is a probe target ``policy`` allows.

    Checks the scheme, that there is a host, the port (explicit or the scheme's
    default), and, when the host is an IP literal in any form, the address. DNS names
    are checked when their answers are dialled (``make_socket_factory``), because only
    then is the address known.
    """
    try:
        # Parse with yarl, as aiohttp does: a different parser could see a different
        # host in tricks like ``http://example.com@127.0.0.1/``.
        parsed = URL(url)
    except (TypeError, ValueError) as exc:
        raise Blocked(f"{short(url)!r} is not a valid URL") from exc
    schemes = "/".join(policy.schemes)
    if parsed.scheme.lower() not in policy.schemes:
        used = f"uses the {parsed.scheme!r} scheme" if parsed.scheme else "has no scheme"
        raise Blocked(f"{short(url)} {used}; probes support {schemes} only")
    host = parsed.raw_host  # what aiohttp connects to
    if not host:
        raise Blocked(f"{short(url)} has no host")
    port = parsed.port
    if port is None:
        raise Blocked(f"{short(url)} has no port and {parsed.scheme} has no default one")
    addr = parse_host(host)
    if addr is not None:
        check_address(addr, policy)
        _check_port(port, addr, policy)
    elif port not in policy.ports and not (
        policy.allow_any_port_for_allowed_ranges and policy.allow_private
    ):
        # A DNS name on an unlisted port can only be fine if it resolves into an
        # operator range; without such ranges it never can, so say so now.
        _check_port(port, None, policy)
