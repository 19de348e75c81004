"""The SSRF guard (bot/ssrf.py): the matrix from RELIABILITY.md, never leaving loopback.

Address checks are pure and run before any socket exists. Every "reached or not" check
uses canary listeners on 127.0.0.0/8 or ::1 that count accepted TCP connections; no test
ever dials an address outside loopback, even to show that it is blocked.
"""

from __future__ import annotations

import asyncio
import pickle
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from ipaddress import IPv4Address, IPv6Address, ip_address

import aiohttp
import pytest
from aiohappyeyeballs import AddrInfoType
from aiohttp.abc import AbstractResolver, ResolveResult

from bot import ssrf
from bot.ssrf import (
    Blocked,
    Policy,
    check_address,
    check_url,
    describe,
    make_connector,
    make_session,
    make_socket_factory,
    parse_host,
)

NO_PRIVATE = Policy()
LOOPBACK_ALLOWED = Policy.from_config(["127.0.0.0/8"])
ONLY_127_0_0_1 = Policy.from_config(["127.0.0.1/32"])
TIMEOUT = aiohttp.ClientTimeout(total=10, sock_connect=3)


# --- Pure address checks (no sockets) ----------------------------------------------------


def allowed(addr: str | IPv4Address | IPv6Address, policy: Policy) -> bool:
    try:
        check_address(addr, policy)
    except Blocked:
        return False
    return True


def url_allowed(url: str, policy: Policy) -> bool:
    try:
        check_url(url, policy)
    except Blocked:
        return False
    return True


BLOCKED = [
    "169.254.169.254",
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "100.64.0.1",
    "127.0.0.1",
    "0.0.0.0",
    "224.0.0.1",
    "255.255.255.255",
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "ff02::1",
    "::ffff:169.254.169.254",
    "::ffff:127.0.0.1",
    "::127.0.0.1",
    "64:ff9b::a9fe:a9fe",
    "64:ff9b::7f00:1",
    "2002:a9fe:a9fe::1",
    "2002:7f00:1::1",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    "2001:db8::1",
]


@pytest.mark.parametrize("addr", BLOCKED)
def test_special_addresses_are_blocked(addr: str) -> None:
    with pytest.raises(Blocked) as info:
        check_address(addr, NO_PRIVATE)
    assert info.value.reason.endswith("probes may not reach it")
    assert str(info.value) == info.value.reason
    # The object forms are checked the same way as the text.
    with pytest.raises(Blocked):
        check_address(ip_address(addr), NO_PRIVATE)


@pytest.mark.parametrize(
    ("addr", "words"),
    [
        ("169.254.169.254", ["169.254.169.254", "link-local", "cloud metadata"]),
        ("100.64.0.1", ["carrier-grade NAT"]),
        ("::ffff:169.254.169.254", ["IPv4-mapped", "169.254.169.254", "cloud metadata"]),
        ("::127.0.0.1", ["IPv4-compatible", "127.0.0.1", "loopback"]),
        ("64:ff9b::a9fe:a9fe", ["NAT64", "169.254.169.254"]),
        ("64:ff9b:1::a9fe:a9fe", ["NAT64", "169.254.169.254"]),
        ("2002:a9fe:a9fe::1", ["6to4", "169.254.169.254"]),
        # Teredo client = last 32 bits XOR 0xffffffff: 3fff:fdd2 -> 192.0.2.45.
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", ["Teredo", "192.0.2.45"]),
        ("::1", ["loopback"]),
    ],
)
def test_reasons_name_the_problem(addr: str, words: list[str]) -> None:
    with pytest.raises(Blocked) as info:
        check_address(addr, NO_PRIVATE)
    for word in words:
        assert word in info.value.reason


@pytest.mark.parametrize(
    "addr",
    ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "2002:5db8:d822::1", "64:ff9b::808:808"],
)
def test_public_addresses_are_allowed(addr: str) -> None:
    assert allowed(addr, NO_PRIVATE)


@pytest.mark.parametrize(
    "addr",
    [
        "2001:0:808:808::1",  # Teredo with public server and client: still 2001::/23
        "::ffff:0:808:808",  # IPv4-translated (SIIT): outside 2000::/3, not a wrapper
        "64:ff9b:1:1::808:808",  # local-use NAT64, non-/96 layout
        "100::1",
        "3fff::1",
    ],
)
def test_other_reserved_ipv6_is_blocked(addr: str) -> None:
    with pytest.raises(Blocked):
        check_address(addr, NO_PRIVATE)


def test_allow_private_covers_listed_ranges_and_their_mapped_forms_only() -> None:
    assert allowed("127.0.0.1", LOOPBACK_ALLOWED)
    assert allowed("::ffff:127.0.0.1", LOOPBACK_ALLOWED)
    assert allowed(IPv4Address("127.8.9.10"), LOOPBACK_ALLOWED)
    for addr in ("10.0.0.1", "169.254.169.254", "::1", "::ffff:10.0.0.1"):
        assert not allowed(addr, LOOPBACK_ALLOWED)


def test_allow_private_ipv6_range() -> None:
    policy = Policy.from_config(["fd00:1234::/32"])
    assert allowed("fd00:1234::5", policy)
    assert not allowed("fd00:9999::5", policy)


def test_zone_ids_do_not_change_the_verdict() -> None:
    with pytest.raises(Blocked, match="link-local"):
        check_address(IPv6Address("fe80::1%eth0"), NO_PRIVATE)
    with pytest.raises(Blocked, match="link-local"):
        check_address("fe80::1%eth0", NO_PRIVATE)


@pytest.mark.parametrize("text", ["example.com", "", "not an address"])
def test_non_addresses_fail_closed(text: str) -> None:
    with pytest.raises(Blocked, match="not an IP address"):
        check_address(text, NO_PRIVATE)


def test_policy_config_rejects_a_range_with_host_bits() -> None:
    with pytest.raises(ValueError):
        Policy.from_config(["127.0.0.1/8"])
    with pytest.raises(ValueError):
        Policy(ports=frozenset({0}))


def test_blocked_is_an_oserror_and_pickles() -> None:
    exc = Blocked("x is a loopback address")
    assert isinstance(exc, PermissionError) and isinstance(exc, OSError)
    assert exc.strerror == exc.reason
    copy = pickle.loads(pickle.dumps(exc))
    assert isinstance(copy, Blocked) and copy.reason == exc.reason


# --- parse_host ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("2130706433", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.0.0.1", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0X7F.1", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("169.254.43518", "169.254.169.254"),
        ("127.0.0.1.", "127.0.0.1"),
        ("0", "0.0.0.0"),
        ("[::1]", "::1"),
        ("::ffff:127.0.0.1", "::ffff:7f00:1"),
        ("fe80::1%eth0", "fe80::1"),
        ("[fe80::1%25eth0]", "fe80::1"),
    ],
)
def test_parse_host_recognises_inet_aton_forms(host: str, expected: str) -> None:
    assert parse_host(host) == ip_address(expected)


@pytest.mark.parametrize(
    "host",
    [
        "example.com",
        "",
        "1.2.3.4.5",
        "256.1.1.1",
        "1.256.1.1",
        "4294967296",
        "1.16777216",
        "08.0.0.1",
        "1..1",
        "0x1g",
        "127.0.0.1 ",
        "[example.com]",
        "1" * 5000,
        "\uff11\uff12\uff17.0.0.1",  # fullwidth digits: not inet_aton's (yarl NFKC-folds them)
        "::ffff:127.1",
    ],
)
def test_parse_host_leaves_names_alone(host: str) -> None:
    assert parse_host(host) is None


# --- check_url -----------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["ftp://example.com/", "file:///etc/passwd", "gopher://x:70/"])
def test_check_url_refuses_other_schemes(url: str) -> None:
    with pytest.raises(Blocked, match="http/https only"):
        check_url(url, NO_PRIVATE)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://example.com:22/", "port 22"),
        ("https://93.184.216.34:6379/", "port 6379"),
        ("http://2130706433/", "127.0.0.1"),
        ("http://0x7f.1/", "127.0.0.1"),
        ("http://0177.0.0.1/", "127.0.0.1"),
        ("http://example.com@127.0.0.1/", "127.0.0.1"),
        ("http://user:pw@169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("http://[::ffff:169.254.169.254]/", "169.254.169.254"),
        ("http://[fe80::1%25eth0]/", "link-local"),
        ("http://\uff11\uff12\uff17.0.0.1/", "127.0.0.1"),
        ("http:///path", "no host"),
        ("example.com/path", "http/https only"),
    ],
)
def test_check_url_refuses(url: str, words: str) -> None:
    with pytest.raises(Blocked) as info:
        check_url(url, NO_PRIVATE)
    assert words in info.value.reason


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/",
        "http://example.com:8080/x",
        "HTTPS://EXAMPLE.COM:8443/",
        "http://93.184.216.34/",
        "https://[2606:4700:4700::1111]/",
    ],
)
def test_check_url_allows_public_targets(url: str) -> None:
    assert url_allowed(url, NO_PRIVATE)


def test_check_url_with_loopback_allowed() -> None:
    assert url_allowed("http://127.0.0.1:54321/", LOOPBACK_ALLOWED)  # any port in the range
    assert url_allowed("http://[::ffff:127.0.0.1]:54321/", LOOPBACK_ALLOWED)
    # A DNS name on an unlisted port can only be judged once resolved: deferred.
    assert url_allowed("http://localhost:54321/", LOOPBACK_ALLOWED)
    with pytest.raises(Blocked, match="port 54321"):
        check_url("http://localhost:54321/", NO_PRIVATE)
    with pytest.raises(Blocked, match="port 54321"):
        check_url("http://93.184.216.34:54321/", LOOPBACK_ALLOWED)
    with pytest.raises(Blocked, match="private"):
        check_url("http://10.0.0.1/", LOOPBACK_ALLOWED)
    strict = Policy.from_config(["127.0.0.0/8"], allow_any_port_for_allowed_ranges=False)
    with pytest.raises(Blocked, match="port 54321"):
        check_url("http://127.0.0.1:54321/", strict)


# --- The socket factory, called directly (creates no connection) ---------------------------


def _addrinfo(host: str, port: int) -> AddrInfoType:
    if ":" in host:
        return (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port, 0, 0))
    return (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port))


@pytest.mark.parametrize(
    ("host", "port", "words"),
    [
        ("169.254.169.254", 80, "cloud metadata"),
        ("::ffff:169.254.169.254", 80, "169.254.169.254"),
        ("64:ff9b::a9fe:a9fe", 443, "NAT64"),
        ("fe80::1%eth0", 80, "link-local"),
        ("10.0.0.1", 443, "private"),
        ("8.8.8.8", 22, "port 22"),
    ],
)
def test_factory_refuses_before_creating_a_socket(
    monkeypatch: pytest.MonkeyPatch, host: str, port: int, words: str
) -> None:
    created: list[object] = []

    def fake_socket(*args: object, **kwargs: object) -> None:
        created.append(args)

    monkeypatch.setattr(socket, "socket", fake_socket)
    factory = make_socket_factory(NO_PRIVATE)
    with pytest.raises(Blocked) as info:
        factory(_addrinfo(host, port))
    assert words in info.value.reason
    assert created == []


def test_factory_refuses_other_families() -> None:
    factory = make_socket_factory(LOOPBACK_ALLOWED)
    with pytest.raises(Blocked, match="family"):
        factory((socket.AF_UNIX, socket.SOCK_STREAM, 0, "", ("/tmp/x",)))


def test_factory_creates_the_socket_for_an_allowed_address() -> None:
    factory = make_socket_factory(LOOPBACK_ALLOWED)
    with factory(_addrinfo("127.0.0.1", 54321)) as sock:  # not connected
        assert sock.family == socket.AF_INET and sock.type == socket.SOCK_STREAM


def test_make_connector_refuses_a_replacement_socket_factory() -> None:
    with pytest.raises(TypeError, match="socket_factory"):
        make_connector(NO_PRIVATE, socket_factory=lambda ai: socket.socket())


def test_describe_walks_the_cause_chain() -> None:
    blocked = Blocked("127.0.0.1 is a loopback address")
    try:
        try:
            raise blocked
        except Blocked as exc:
            raise aiohttp.ClientOSError(*exc.args) from exc
    except aiohttp.ClientOSError as outer:
        assert describe(outer) == blocked.reason
    assert describe(ExceptionGroup("g", [ValueError(), blocked])) == blocked.reason
    assert describe(ConnectionRefusedError()) is None


# --- Connect time: loopback canaries only --------------------------------------------------


class Canary:
    """A loopback HTTP listener that counts accepted TCP connections and request paths."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.port = 0
        self.connections = 0
        self.paths: list[str] = []
        self.redirects: dict[str, str] = {}
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self, port: int = 0) -> Canary:
        self._server = await asyncio.start_server(self._serve, self.host, port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ", 2)[1].decode()
            self.paths.append(path)
            location = self.redirects.get(path)
            lines = [f"HTTP/1.1 {302 if location else 200} X", "Content-Length: 2"]
            lines += ["Connection: close"] + ([f"Location: {location}"] if location else [])
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + b"ok")
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


StartCanary = Callable[..., Awaitable[Canary]]


@pytest.fixture
async def canary() -> AsyncIterator[StartCanary]:
    started: list[Canary] = []

    async def start(host: str = "127.0.0.1", port: int = 0) -> Canary:
        try:
            server = await Canary(host).start(port)
        except OSError as exc:
            pytest.skip(f"cannot listen on {host}: {exc}")
        started.append(server)
        return server

    yield start
    for server in started:
        await server.close()


SessionMaker = Callable[[Policy], aiohttp.ClientSession]


def no_loopback(port: int) -> Policy:
    """Loopback not allowed, the canary's port allowed: only the address can refuse it."""
    return Policy(ports=ssrf.DEFAULT_PORTS | {port})


def full_stack(policy: Policy) -> aiohttp.ClientSession:
    return make_session(policy, timeout=TIMEOUT)


def factory_only(policy: Policy) -> aiohttp.ClientSession:
    """Only the socket factory guards this session: it must hold on its own."""
    connector = aiohttp.TCPConnector(socket_factory=make_socket_factory(policy))
    return aiohttp.ClientSession(connector=connector, timeout=TIMEOUT)


SESSIONS = pytest.mark.parametrize("session_for", [full_stack, factory_only])


async def _refused(
    session: aiohttp.ClientSession, url: str, **kwargs: object
) -> aiohttp.ClientError:
    with pytest.raises(aiohttp.ClientError) as info:
        async with session.get(url, **kwargs) as resp:  # type: ignore[arg-type]
            await resp.read()
    return info.value


@SESSIONS
async def test_ip_literal_loopback_is_refused_unconnected(
    canary: StartCanary, session_for: SessionMaker
) -> None:
    target = await canary()
    async with session_for(no_loopback(target.port)) as session:
        error = await _refused(session, f"{target.url}/")
    reason = describe(error)
    assert reason is not None and "127.0.0.1 is a loopback address" in reason
    assert target.connections == 0


@SESSIONS
async def test_localhost_is_refused_at_connect_time(
    canary: StartCanary, session_for: SessionMaker
) -> None:
    target = await canary()
    try:  # if localhost also resolves to ::1 here, count those connections too
        target6: Canary | None = await Canary("::1").start(target.port)
    except OSError:
        target6 = None
    try:
        async with session_for(no_loopback(target.port)) as session:
            error = await _refused(session, f"http://localhost:{target.port}/")
    finally:
        if target6 is not None:
            await target6.close()
    assert "loopback" in str(error)
    if session_for is full_stack:  # the resolver guard keeps the error typed
        reason = describe(error)
        assert reason is not None and reason.startswith("localhost resolves only to blocked")
    assert target.connections == 0
    assert target6 is None or target6.connections == 0


@SESSIONS
async def test_ipv6_loopback_is_refused_unconnected(
    canary: StartCanary, session_for: SessionMaker
) -> None:
    target = await canary("::1")
    async with session_for(no_loopback(target.port)) as session:
        error = await _refused(session, f"{target.url}/")
    reason = describe(error)
    assert reason is not None and "::1 is the IPv6 loopback address" in reason
    assert target.connections == 0


async def test_allowed_loopback_is_reached(canary: StartCanary) -> None:
    target = await canary()
    async with (
        make_session(LOOPBACK_ALLOWED, timeout=TIMEOUT) as session,
        session.get(f"{target.url}/hello") as resp,
    ):
        assert resp.status == 200
        assert await resp.read() == b"ok"
    assert target.connections == 1
    assert target.paths == ["/hello"]


class Rebinding(AbstractResolver):
    """Answers each lookup with the next (address, port): the attacker's DNS server."""

    def __init__(self, answers: list[tuple[str, int]]) -> None:
        self.answers = list(answers)
        self.given: list[tuple[str, int]] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addr, answer_port = self.answers.pop(0)
        self.given.append((addr, answer_port))
        return [
            {
                "hostname": host,
                "host": addr,
                "port": answer_port,
                "family": socket.AF_INET,
                "proto": 0,
                "flags": 0,
            }
        ]

    async def close(self) -> None:
        return None


@pytest.mark.parametrize("guard", ["factory_only", "make_connector"])
async def test_dns_rebinding_is_checked_at_the_dialled_address(
    canary: StartCanary, guard: str
) -> None:
    # Only 127.0.0.1 is allowed, so 127.0.0.1 plays the public address and 127.0.0.2
    # the internal one: the whole test stays on loopback.
    public = await canary("127.0.0.1")
    internal = await canary("127.0.0.2")
    resolver = Rebinding([("127.0.0.1", public.port), ("127.0.0.2", internal.port)])
    dialled: list[tuple[str, int]] = []
    guarded = make_socket_factory(ONLY_127_0_0_1)

    def spy(addr_info: AddrInfoType) -> socket.socket:
        dialled.append(tuple(addr_info[4][:2]))
        return guarded(addr_info)

    # use_dns_cache=False: resolve per request, as a short-TTL rebinding record forces.
    options = {"resolver": resolver, "use_dns_cache": False, "force_close": True}
    if guard == "factory_only":
        connector = aiohttp.TCPConnector(socket_factory=spy, **options)  # type: ignore[arg-type]
    else:
        connector = make_connector(ONLY_127_0_0_1, **options)
    url = f"http://rebind.test:{public.port}/"
    async with aiohttp.ClientSession(connector=connector, timeout=TIMEOUT) as session:
        async with session.get(url) as resp:  # first answer: allowed, and reached
            assert resp.status == 200
        error = await _refused(session, url)  # same name, now rebound inside
    reason = describe(error)
    assert reason is not None and "127.0.0.2 is a loopback address" in reason
    assert resolver.given == [("127.0.0.1", public.port), ("127.0.0.2", internal.port)]
    if guard == "factory_only":
        # What the factory checked is exactly what the resolver handed aiohttp to dial.
        assert dialled == resolver.given
    assert public.connections == 1
    assert internal.connections == 0


@SESSIONS
async def test_redirect_to_a_blocked_address_is_refused_unconnected(
    canary: StartCanary, session_for: SessionMaker
) -> None:
    allowed = await canary("127.0.0.1")
    internal = await canary("127.0.0.2")
    allowed.redirects["/start"] = f"{internal.url}/secret"
    async with session_for(ONLY_127_0_0_1) as session:
        error = await _refused(session, f"{allowed.url}/start")
    reason = describe(error)
    assert reason is not None and "127.0.0.2 is a loopback address" in reason
    assert allowed.paths == ["/start"]
    assert internal.connections == 0


async def test_three_redirects_are_followed(canary: StartCanary) -> None:
    target = await canary()
    target.redirects.update({"/3": "/2", "/2": "/1", "/1": "/0"})
    async with (
        make_session(LOOPBACK_ALLOWED, timeout=TIMEOUT) as session,
        session.get(f"{target.url}/3") as resp,
    ):
        assert resp.status == 200
        assert len(resp.history) == 3
    assert target.paths == ["/3", "/2", "/1", "/0"]


async def test_a_fourth_redirect_is_refused(canary: StartCanary) -> None:
    target = await canary()
    target.redirects.update({"/4": "/3", "/3": "/2", "/2": "/1", "/1": "/0"})
    async with make_session(LOOPBACK_ALLOWED, timeout=TIMEOUT) as session:
        with pytest.raises(aiohttp.TooManyRedirects, match="more than 3 redirects"):
            await session.get(f"{target.url}/4")
        # A caller's larger max_redirects does not lift the policy's cap.
        target.paths.clear()
        with pytest.raises(aiohttp.TooManyRedirects):
            await session.get(f"{target.url}/4", max_redirects=10)
    assert target.paths == ["/4", "/3", "/2", "/1"]  # /0 never requested


async def test_a_per_request_proxy_is_refused(canary: StartCanary) -> None:
    proxy = await canary()
    target = await canary()
    async with make_session(LOOPBACK_ALLOWED, timeout=TIMEOUT) as session:
        error = await _refused(session, f"{target.url}/", proxy=proxy.url)
    assert describe(error) == "probes may not go through a proxy"
    assert proxy.connections == 0 and target.connections == 0


async def test_proxy_environment_is_ignored(
    canary: StartCanary, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = await canary()
    target = await canary()
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, proxy.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    async with make_session(LOOPBACK_ALLOWED, timeout=TIMEOUT) as session:
        assert session.trust_env is False
        async with session.get(f"{target.url}/direct") as resp:
            assert resp.status == 200
    assert target.paths == ["/direct"]
    assert proxy.connections == 0
