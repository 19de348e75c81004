"""Probe throughput: ``run_probe`` against loopback targets, beside a bare aiohttp loop and
blackbox_exporter, each prober pinned to one core.

The issue's target is "at least 3,000 plain and 750 TLS probes/s on one core". Every probe opens
a new connection (and for https does a full TLS handshake: the server has session caches and
tickets off, so nobody resumes), because that is what the bot does (``bot.probes.dial`` opens a
fresh connection per probe, never pooled) and what blackbox_exporter does (a new client per
probe, keep-alives off).

Layout on this 2-core machine:

- CPU 0: the measured prober, alone. The Python contenders run in their own subprocess that
  pins itself with ``os.sched_setaffinity(0, {0})`` first thing; blackbox_exporter is started
  pinned to CPU 0 with ``GOMAXPROCS=1``.
- CPU 1: the loopback target (nginx, one worker, ``return 200``; plain and TLS listeners) and,
  for blackbox_exporter only, the aiohttp client that drives its ``/probe`` endpoint.

Contenders, all with the same number of probes in flight (``concurrency``):

- outagebot: ``run_probe`` with a ``ProbeContext`` built like ``make_context`` builds it
  (``open_session``: the lean HTTP/1.1 engine, ``bot.probes.h1`` and ``bot.probes.dial``, with
  the SSRF guard on every URL and every address dialled), with a policy allowing 127.0.0.0/8
  and an SSL context trusting the benchmark's CA.
- bare aiohttp: ``ClientSession`` with a ``force_close`` connector and no guard: what the same
  interpreter and event loop do with the usual Python HTTP client (the engine before this one
  was built on it).
- blackbox_exporter (Debian's Go binary): ``/probe?target=...&module=...`` driven with a
  keep-alive aiohttp client; a probe counts when the answer says ``probe_success 1``.

With uvloop importable (the optional ``speed`` extra, or ``PYTHONPATH`` pointing at a
``pip install --target DIR uvloop``), both Python contenders also run on uvloop's event loop.

Each run warms up, then counts successful probes over a fixed window; the CPU time of the
prober, of nginx and of the driver over that window is read from ``/proc`` to show which side
was the limit. The machine is shared, so CPU 0 may also run other people's jobs: successful
probes per CPU-second of the prober is reported beside the wall-clock rate. ``wrk`` (C,
``Connection: close``) against the same nginx gives the server's capacity, and for https
``openssl s_time`` (C, the system's libssl, as Python's ``ssl`` and nginx use, a new verified
handshake per connection) shows what that OpenSSL's own client pays per handshake on this
machine. Which OpenSSL each contender uses is reported: outagebot's probes run on pyOpenSSL,
with the OpenSSL that cryptography's wheel bundles (``bot.probes.tls``), not the system's.

A last experiment starts probes at a fixed rate (as a schedule does) towards a healthy target
that answers after a delay, to show whether probes wait for a connection slot inside their own
timeout and latency clock (aiohttp's default pool of 100 did that to the aiohttp-based engine
until the benchmark found it; the lean engine has no pool).

Needs Debian's nginx, wrk, openssl and prometheus-blackbox-exporter (``apt-get install -y nginx
wrk openssl prometheus-blackbox-exporter``) and trustme (the ``test`` extra).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import importlib.util
import json
import os
import re
import resource
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bot.model import Target
from bot.probes import run_probe
from bot.probes.base import ProbeContext
from bot.probes.session import open_session
from bot.ssrf import Policy

from .common import (
    PROJECT_DIR,
    Section,
    Table,
    median,
    p99,
    progress,
    ratio,
)

TARGET_PLAIN = 3_000.0  # probes/s on one core (the issue)
TARGET_TLS = 750.0
PROBER_CPU = 0  # the measured process
SERVER_CPU = 1  # nginx, the delay server and the blackbox driver
LOOPBACK = "127.0.0.1"
ALLOW = ("127.0.0.0/8",)
SCHEMES = ("plain", "tls")
BLACKBOX = "prometheus-blackbox-exporter"  # Debian's name for the blackbox_exporter binary
TICKS = os.sysconf("SC_CLK_TCK")

# Contender keys, in table order; the label says what each one is.
CONTENDERS = ("bot", "bare", "blackbox")
# With uvloop importable (it is not a dependency: e.g. PYTHONPATH=<pip install --target DIR
# uvloop>), the two Python contenders also run on its event loop: a candidate fix, measured.
UVLOOP_CONTENDERS = ("bot+uvloop", "bare+uvloop")
LABELS = {
    "bot": "outagebot run_probe (h1 engine, guarded)",
    "bare": "bare aiohttp, force_close",
    "bot+uvloop": "outagebot run_probe on uvloop",
    "bare+uvloop": "bare aiohttp on uvloop",
    "blackbox": "blackbox_exporter (Go, GOMAXPROCS=1)",
    "wrk": "wrk → nginx (server capacity, not a prober)",
    "s_time": "openssl s_time → nginx (C client on the system libssl, not a prober)",
}


@dataclass(frozen=True, slots=True)
class ProbeBenchConfig:
    duration: float  # seconds counted per run
    warmup: float  # seconds run before counting starts
    repetitions: int
    concurrency: int  # probes in flight, the same for every contender
    timeout: float  # each probe's budget (ProbeContext.timeout)
    # The connection-cap experiment: probes started at a fixed rate (as a schedule starts
    # them) towards a healthy target answering after a delay: (probes/s, delay in s) cases.
    cap_cases: tuple[tuple[float, float], ...]
    cap_duration: float
    cap_warmup: float


# 100 in flight: aiohttp's default connector limit, which open_session keeps, so "the same
# concurrency" really is the same for all three (see the cap experiment for more).
QUICK = ProbeBenchConfig(
    duration=2,
    warmup=1,
    repetitions=1,
    concurrency=100,
    timeout=5,
    cap_cases=((300, 1.0),),
    cap_duration=3,
    cap_warmup=6,
)
FULL = ProbeBenchConfig(
    duration=10,
    warmup=2,
    repetitions=3,
    concurrency=100,
    timeout=5,
    cap_cases=((150, 0.5), (300, 0.5), (300, 1.0), (600, 1.0)),
    cap_duration=10,
    cap_warmup=6,
)


# ---- results ----------------------------------------------------------------------------------


@dataclass(slots=True)
class RunResult:
    """One contender's counted window, as a worker (or wrk) reports it."""

    ok: int
    failed: int
    seconds: float
    cpu: dict[str, float]  # process name -> share of one core over the window
    errors: dict[str, int] = field(default_factory=dict)
    wall_ms: list[float] = field(default_factory=list)  # caller-measured, per counted probe
    reported_ms: list[float] = field(default_factory=list)  # Outcome.latency_ms (bot only)

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunResult:
        return cls(**data)


# ---- pinning and CPU accounting ---------------------------------------------------------------


def _pin(cpu: int) -> Callable[[], None]:
    """A ``preexec_fn`` pinning the child before exec, so every thread it starts inherits it."""

    def pin() -> None:
        os.sched_setaffinity(0, {cpu})

    return pin


def cpu_ticks(pid: int) -> int:
    """utime + stime of every thread of ``pid`` so far, in clock ticks (``/proc/PID/stat``)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()  # the command name may contain spaces
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)


def cpu_busy_ticks() -> dict[int, int]:
    """Busy ticks so far of every CPU, whoever ran there (``/proc/stat``: all but idle, iowait)."""
    busy: dict[int, int] = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name.startswith("cpu") and name != "cpu":
            ticks = [int(v) for v in values[:8]]
            busy[int(name[3:])] = sum(ticks) - ticks[3] - ticks[4]
    return busy


class CpuWatch:
    """CPU shares (of one core) of some processes, and of each CPU, over a window of wall time.

    The machine is shared: other people's jobs run on both CPUs. Comparing a CPU's busy share
    with the share of our processes pinned there tells how much of it others took.
    """

    def __init__(self, pids: dict[str, int]) -> None:
        self._pids = pids
        self._start: dict[str, int] = {}
        self._cpus: dict[int, int] = {}
        self._t0 = 0.0

    def start(self) -> None:
        self._t0 = time.perf_counter()
        self._start = {name: cpu_ticks(pid) for name, pid in self._pids.items()}
        self._cpus = cpu_busy_ticks()

    def stop(self) -> dict[str, float]:
        seconds = time.perf_counter() - self._t0
        shares = {
            name: (cpu_ticks(pid) - self._start[name]) / TICKS / seconds
            for name, pid in self._pids.items()
        }
        for cpu, ticks in cpu_busy_ticks().items():
            shares[f"cpu{cpu}"] = (ticks - self._cpus.get(cpu, ticks)) / TICKS / seconds
        return shares


def free_listener() -> socket.socket:
    """A listening loopback socket on a port the OS chose (port 0), for a server to inherit."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((LOOPBACK, 0))
    sock.listen(4096)
    sock.set_inheritable(True)
    # nginx makes its own listeners non-blocking but trusts inherited ones to be: a blocking
    # one would hang its worker in accept() (multi_accept accepts until EAGAIN).
    sock.setblocking(False)
    return sock


# ---- the processes: nginx, blackbox_exporter, the delay server, wrk ---------------------------


@dataclass(frozen=True, slots=True)
class Certs:
    ca: Path
    cert: Path  # server chain (leaf first)
    key: Path


def make_certs(folder: Path) -> Certs:
    """A throwaway CA and a certificate for 127.0.0.1 (ECDSA P-256, trustme's default)."""
    import trustme  # a test dependency; only this benchmark needs it

    ca = trustme.CA()
    leaf = ca.issue_cert(LOOPBACK)
    certs = Certs(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    ca.cert_pem.write_to_path(str(certs.ca))
    leaf.private_key_pem.write_to_path(str(certs.key))
    with certs.cert.open("wb") as out:
        for blob in leaf.cert_chain_pems:
            out.write(blob.bytes())
    return certs


_NGINX_CONF = """\
daemon off;
master_process on;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 8192; multi_accept on; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/nginx-body;
    proxy_temp_path {tmp}/nginx-proxy;
    fastcgi_temp_path {tmp}/nginx-fastcgi;
    uwsgi_temp_path {tmp}/nginx-uwsgi;
    scgi_temp_path {tmp}/nginx-scgi;
    default_type text/plain;
    keepalive_timeout 0;
    server {{
        listen {host}:{plain};
        location / {{ return 200 "ok\\n"; }}
    }}
    server {{
        listen {host}:{tls} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        # Every probe does a full handshake: nobody may resume a session.
        ssl_session_cache off;
        ssl_session_tickets off;
        location / {{ return 200 "ok\\n"; }}
    }}
}}
"""


class Nginx:
    """nginx with one worker on ``SERVER_CPU``, serving ``ok`` over http and https.

    Its listening sockets are bound here to port 0 and handed over through the ``NGINX``
    environment variable (nginx's own socket-inheritance mechanism), so no port is guessed.
    """

    def __init__(self, folder: Path, certs: Certs) -> None:
        self._folder = folder
        self._certs = certs
        self.plain_port = 0
        self.tls_port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self.worker_pid = 0

    def __enter__(self) -> Nginx:
        plain, tls = free_listener(), free_listener()
        try:
            self.plain_port = plain.getsockname()[1]
            self.tls_port = tls.getsockname()[1]
            conf = self._folder / "nginx.conf"
            conf.write_text(
                _NGINX_CONF.format(
                    tmp=self._folder,
                    host=LOOPBACK,
                    plain=self.plain_port,
                    tls=self.tls_port,
                    cert=self._certs.cert,
                    key=self._certs.key,
                )
            )
            fds = (plain.fileno(), tls.fileno())
            self._proc = subprocess.Popen(
                [_which("nginx"), "-c", str(conf), "-e", str(self._folder / "nginx-error.log")],
                env={**os.environ, "NGINX": "".join(f"{fd};" for fd in fds)},
                pass_fds=fds,
                preexec_fn=_pin(SERVER_CPU),
                stdin=subprocess.DEVNULL,
            )
        finally:
            plain.close()  # nginx has its own copies
            tls.close()
        self.worker_pid = _wait_for_child(self._proc.pid)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            _stop(self._proc)


_BLACKBOX_CONF = """\
modules:
  http_plain:
    prober: http
    timeout: {timeout}s
    http:
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
  http_tls:
    prober: http
    timeout: {timeout}s
    http:
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
      tls_config:
        ca_file: {ca}
"""

MODULES = {"plain": "http_plain", "tls": "http_tls"}


class Blackbox:
    """blackbox_exporter on ``PROBER_CPU`` with ``GOMAXPROCS=1``, listening on 127.0.0.1:0."""

    def __init__(self, folder: Path, ca: Path, timeout: float) -> None:
        self._folder = folder
        self._ca = ca
        self._timeout = timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.version = "?"

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def __enter__(self) -> Blackbox:
        conf = self._folder / "blackbox.yml"
        conf.write_text(_BLACKBOX_CONF.format(timeout=int(self._timeout), ca=self._ca))
        binary = _which(BLACKBOX)
        done = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
        found = re.search(r"version (\S+)", done.stdout + done.stderr)
        self.version = found.group(1) if found else "?"
        log = self._folder / "blackbox.log"
        with log.open("wb") as out:
            self._proc = subprocess.Popen(
                [binary, f"--config.file={conf}", f"--web.listen-address={LOOPBACK}:0"],
                env={**os.environ, "GOMAXPROCS": "1"},
                preexec_fn=_pin(PROBER_CPU),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        # It logs the address it really bound: msg="Listening on" address=127.0.0.1:PORT
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not self.port:
            found = re.search(r'"Listening on" address=[\d.]+:(\d+)', log.read_text())
            if found:
                self.port = int(found.group(1))
            elif self._proc.poll() is not None:
                break
            else:
                time.sleep(0.05)
        if not self.port:
            _stop(self._proc)
            raise RuntimeError(f"blackbox_exporter did not start: {log.read_text()[-2000:]}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            _stop(self._proc)


@contextmanager
def delay_server() -> Iterator[tuple[int, int]]:
    """This module's slow target on ``SERVER_CPU`` (``GET /N`` answers after N ms): port, pid."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.probe_bench", "delay-server"],
        cwd=PROJECT_DIR,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        preexec_fn=_pin(SERVER_CPU),
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        yield port, proc.pid
    finally:
        _stop(proc)


def _which(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if path is None:
        raise RuntimeError(
            f"{name} is not installed: apt-get install -y nginx wrk prometheus-blackbox-exporter"
        )
    return path


def _wait_for_child(pid: int) -> int:
    """The first child of ``pid`` (nginx's worker), waiting up to 10 s for it to start."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with suppress(OSError):
            kids = children.read_text().split()
            if kids:
                return int(kids[0])
        time.sleep(0.05)
    raise RuntimeError("nginx did not start a worker; see its error log")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a child this module started (by its own pid), escalating after 10 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def run_wrk(url: str, *, seconds: float, connections: int, nginx_pid: int) -> RunResult:
    """wrk (C, one thread on ``PROBER_CPU``) with ``Connection: close``: the server's capacity."""
    watch = CpuWatch({"nginx": nginx_pid})
    # wrk is gone before it could be read from /proc: take its CPU time from the reaped
    # children's usage (nothing else of ours exits meanwhile).
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    watch.start()
    done = subprocess.run(
        [
            _which("wrk"),
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "5s",
            "-H",
            "Connection: close",
            url,
        ],
        capture_output=True,
        text=True,
        check=False,
        preexec_fn=_pin(PROBER_CPU),
        timeout=seconds + 60,
    )
    cpu = watch.stop()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    out = done.stdout
    total = re.search(r"(\d+) requests in ([\d.]+)(m?s)", out)
    if total is None:
        raise RuntimeError(f"wrk failed: {out}{done.stderr}")
    requests = int(total.group(1))
    secs = float(total.group(2)) * (0.001 if total.group(3) == "ms" else 1)
    errors: dict[str, int] = {}
    socket_errors = re.search(r"Socket errors: (.*)", out)
    if socket_errors:
        for name, count in re.findall(r"(\w+) (\d+)", socket_errors.group(1)):
            if int(count):
                errors[name] = int(count)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        errors["non-2xx"] = int(non2xx.group(1))
    failed = sum(errors.values())
    cpu["prober"] = used / secs
    return RunResult(ok=requests - failed, failed=failed, seconds=secs, cpu=cpu, errors=errors)


def run_s_time(url: str, ca: Path, *, seconds: float, nginx_pid: int) -> RunResult:
    """``openssl s_time -new`` (C, one connection at a time, verifying against ``ca``) on
    ``PROBER_CPU``: full handshakes per second with the libssl Python's ``ssl`` uses."""
    host_port = url.split("://", 1)[1].rstrip("/")
    watch = CpuWatch({"nginx": nginx_pid})
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    watch.start()
    t0 = time.perf_counter()
    done = subprocess.run(
        [
            _which("openssl"),
            "s_time",
            "-connect",
            host_port,
            "-new",
            "-time",
            str(max(1, round(seconds))),
            "-www",
            "/",
            "-verify",
            "2",
            "-CAfile",
            str(ca),
        ],
        capture_output=True,
        text=True,
        check=False,
        preexec_fn=_pin(PROBER_CPU),
        timeout=seconds + 60,
    )
    wall = time.perf_counter() - t0
    cpu = watch.stop()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    found = re.search(r"(\d+) connections in ([\d.]+)s;", done.stdout)
    if found is None:
        raise RuntimeError(f"openssl s_time failed: {done.stdout}{done.stderr}")
    count = int(found.group(1))
    # s_time prints the handshake loop's own time; the process also ran a little longer.
    cpu["prober"] = used / wall
    return RunResult(ok=count, failed=0, seconds=wall, cpu=cpu)


# ---- the worker: one contender in its own pinned process --------------------------------------


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    kind: str  # "bot", "bare" or "blackbox"
    url: str  # the target (for blackbox: the target blackbox_exporter probes)
    ca: str
    concurrency: int
    duration: float
    warmup: float
    timeout: float
    cpu: int  # where this worker pins itself
    watch: dict[str, int]  # other processes whose CPU share to report
    blackbox_port: int = 0
    module: str = ""
    keep_latencies: bool = False
    # > 0: open loop, a new probe task started every 1/rate s (``concurrency`` is then unused),
    # as the scheduler starts probes whether or not earlier ones have finished.
    rate: float = 0.0
    uvloop: bool = False  # run on uvloop's event loop instead of asyncio's

    def to_json(self) -> str:
        return json.dumps({name: getattr(self, name) for name in self.__slots__})


# A probe call: (ok, Outcome.latency_ms or None, error label or None).
ProbeCall = Callable[[], Awaitable[tuple[bool, float | None, str | None]]]


def run_worker(spec: WorkerSpec) -> RunResult:
    """Run ``spec`` in a fresh interpreter and return what it counted."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.probe_bench", "worker", spec.to_json()],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=False,
        timeout=spec.warmup + spec.duration + spec.timeout + 120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"worker {spec.kind} failed: {done.stderr[-3000:]}")
    return RunResult.from_json(json.loads(done.stdout.strip().splitlines()[-1]))


async def _open(spec: WorkerSpec) -> tuple[ProbeCall, Callable[[], Awaitable[None]]]:
    """The probe call for ``spec.kind`` and how to close what it opened."""
    ssl_ctx = ssl.create_default_context(cafile=spec.ca)  # verifying, trusting only our CA
    if spec.kind == "bot":
        policy = Policy.from_config(ALLOW)
        # What make_context builds, with the benchmark CA (make_context takes no ssl_context).
        ctx = ProbeContext(
            session=open_session(policy, timeout=spec.timeout, ssl_context=ssl_ctx),
            policy=policy,
            timeout=spec.timeout,
        )
        target = Target(kind="web", url=spec.url)

        async def bot_call() -> tuple[bool, float | None, str | None]:
            outcome = await run_probe(target, ctx)
            return outcome.ok, outcome.latency_ms, None if outcome.ok else str(outcome.error)

        return bot_call, ctx.session.close

    timeout = aiohttp.ClientTimeout(total=spec.timeout)
    if spec.kind == "bare":
        # No limit: the worker's task count is the concurrency.
        connector = aiohttp.TCPConnector(force_close=True, limit=0, ssl=ssl_ctx)
        session = aiohttp.ClientSession(connector=connector, timeout=timeout)

        async def bare_call() -> tuple[bool, float | None, str | None]:
            try:
                async with session.get(spec.url) as resp:
                    ok = 200 <= resp.status < 400
                    return ok, None, None if ok else f"status {resp.status}"
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                return False, None, type(exc).__name__

        return bare_call, session.close

    if spec.kind == "blackbox":
        # Keep-alive towards the exporter: the driver must cost as little as possible.
        connector = aiohttp.TCPConnector(limit=0)
        session = aiohttp.ClientSession(connector=connector, timeout=timeout)
        probe_url = f"http://{LOOPBACK}:{spec.blackbox_port}/probe"
        params = {"target": spec.url, "module": spec.module}

        async def blackbox_call() -> tuple[bool, float | None, str | None]:
            try:
                async with session.get(probe_url, params=params) as resp:
                    body = await resp.read()
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                return False, None, type(exc).__name__
            ok = b"\nprobe_success 1\n" in body
            return ok, None, None if ok else "probe_success 0"

        return blackbox_call, session.close
    raise ValueError(f"unknown contender {spec.kind!r}")


async def _measure(spec: WorkerSpec) -> RunResult:
    call, close = await _open(spec)
    counting = False
    stop = False
    ok = failed = 0
    errors: Counter[str] = Counter()
    wall: list[float] = []
    reported: list[float] = []

    async def one() -> None:
        nonlocal ok, failed
        started = time.perf_counter()
        good, latency_ms, error = await call()
        if not counting:
            return
        if good:
            ok += 1
        else:
            failed += 1
            errors[error or "?"] += 1
        if spec.keep_latencies:
            wall.append((time.perf_counter() - started) * 1000)
            if latency_ms is not None:
                reported.append(latency_ms)

    async def closed_loop() -> None:
        while not stop:
            await one()

    tasks: set[asyncio.Task[None]] = set()

    async def open_loop() -> None:
        # Start probes at spec.rate per second on a 5 ms tick, catching up after a late tick.
        began = time.perf_counter()
        started = 0
        while not stop:
            due = int((time.perf_counter() - began) * spec.rate)
            for _ in range(due - started):
                task = asyncio.create_task(one())
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            started = due
            await asyncio.sleep(0.005)

    name = "driver" if spec.kind == "blackbox" else "prober"
    watch = CpuWatch({name: os.getpid(), **spec.watch})
    if spec.rate > 0:
        tasks.add(asyncio.create_task(open_loop()))
    else:
        tasks.update(asyncio.create_task(closed_loop()) for _ in range(spec.concurrency))
    await asyncio.sleep(spec.warmup)
    watch.start()
    t0 = time.perf_counter()
    counting = True
    await asyncio.sleep(spec.duration)
    counting = False
    seconds = time.perf_counter() - t0
    cpu = watch.stop()
    stop = True
    # Every probe has its own timeout, so this ends; cancel stragglers all the same.
    if tasks:
        _, pending = await asyncio.wait(set(tasks), timeout=spec.timeout + 5)
        for task in pending:
            task.cancel()
    await close()
    return RunResult(
        ok=ok,
        failed=failed,
        seconds=seconds,
        cpu=cpu,
        errors=dict(errors),
        wall_ms=wall,
        reported_ms=reported,
    )


def _worker_main(raw: str) -> None:
    spec = WorkerSpec(**json.loads(raw))
    # Pin before anything starts a thread (aiohttp's resolver pool would inherit it anyway).
    os.sched_setaffinity(0, {spec.cpu})
    if spec.uvloop:
        import uvloop  # optional, see UVLOOP_CONTENDERS

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    result = asyncio.run(_measure(spec))
    data = {name: getattr(result, name) for name in result.__slots__}
    print(json.dumps(data))


# ---- the delay server: a healthy but slow target for the connection-cap experiment ------------


class _SlowHttp(asyncio.Protocol):
    """Answers ``200 ok`` N ms after the headers of ``GET /N``, then closes."""

    RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n"

    def __init__(self) -> None:
        self._buffer = b""
        self._transport: asyncio.Transport | None = None
        self._answered = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if not self._answered and b"\r\n\r\n" in self._buffer:
            self._answered = True
            path = self._buffer.split(b" ", 2)[1]
            delay = int(path.strip(b"/") or b"0") / 1000
            asyncio.get_running_loop().call_later(delay, self._answer)

    def _answer(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(self.RESPONSE)
            self._transport.close()


async def _serve_delayed(lifetime: float) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_SlowHttp, LOOPBACK, 0, backlog=4096)
    print(server.sockets[0].getsockname()[1], flush=True)
    # Bounded: it stops by itself even if the parent forgets it.
    async with server:
        await asyncio.sleep(lifetime)


# ---- the benchmark ----------------------------------------------------------------------------


def run(config: ProbeBenchConfig) -> Section:
    section = Section("probe", "Probe throughput (one core, new connection per probe)")
    with tempfile.TemporaryDirectory(prefix="probe-bench-") as tmp:
        folder = Path(tmp)
        certs = make_certs(folder)
        with Nginx(folder, certs) as nginx, Blackbox(folder, certs.ca, config.timeout) as bb:
            urls = {
                "plain": f"http://{LOOPBACK}:{nginx.plain_port}/",
                "tls": f"https://{LOOPBACK}:{nginx.tls_port}/",
            }
            negotiated = _negotiated(nginx.tls_port, certs.ca)
            results = _throughput(config, urls, certs.ca, nginx.worker_pid, bb)
            bb_version = bb.version
        cap = _connection_cap(config, certs.ca)
    section.facts += [
        f"Pinning: each prober alone on CPU {PROBER_CPU} (Python workers call "
        f"os.sched_setaffinity(0, {{{PROBER_CPU}}}) first; blackbox_exporter {bb_version} is "
        f"started pinned there with GOMAXPROCS=1). nginx (1 worker, `return 200`) and the "
        f"blackbox driver (aiohttp, keep-alive) on CPU {SERVER_CPU}.",
        f"Each run: {config.concurrency} probes in flight, {config.warmup:g} s warm-up, then "
        f"successful probes counted over {config.duration:g} s; {config.repetitions} "
        "repetition(s), contender order rotated per repetition; medians quoted. Every probe "
        f"opens a new TCP connection; https does a full handshake ({negotiated}, as nginx "
        "negotiates it with Python's ssl; ECDSA P-256 "
        "certificate from trustme; session cache and tickets off on the server).",
        f"{config.concurrency} in flight keeps one core busy on loopback (a probe takes about "
        "a millisecond there), and stays within any connection cap the bot may set.",
        _tls_libraries(),
    ]
    if "bot+uvloop" in results["plain"]:
        section.facts.append(
            f"uvloop {_version('uvloop')} rows: uvloop is the optional `speed` extra (not a "
            "hard dependency); the rows show what it adds on the same machine, same run."
        )
    section.facts += _verdicts(results)
    for scheme in SCHEMES:
        section.tables.append(_throughput_table(scheme, results[scheme], config))
    section.tables.append(_cap_table(cap, config))
    return section


def _negotiated(port: int, ca: Path) -> str:
    """The TLS version and cipher nginx agrees with Python's ``ssl`` (what the probes do)."""
    ctx = ssl.create_default_context(cafile=str(ca))
    with (
        socket.create_connection((LOOPBACK, port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname=LOOPBACK) as tls,
    ):
        cipher = tls.cipher()
        return f"{tls.version()}, {cipher[0] if cipher else '?'}, {ssl.OPENSSL_VERSION}"


def _throughput(
    config: ProbeBenchConfig, urls: dict[str, str], ca: Path, nginx_pid: int, bb: Blackbox
) -> dict[str, dict[str, list[RunResult]]]:
    contenders = _contenders()
    extras = {"plain": ("wrk",), "tls": ("wrk", "s_time")}
    results: dict[str, dict[str, list[RunResult]]] = {
        scheme: {name: [] for name in (*contenders, *extras[scheme])} for scheme in SCHEMES
    }
    for rep in range(config.repetitions):
        turn = rep % len(contenders)
        order = [*contenders[turn:], *contenders[:turn]]
        for scheme in SCHEMES:
            for name in (*order, *extras[scheme]):
                if name == "s_time":
                    result = run_s_time(
                        urls[scheme], ca, seconds=config.duration, nginx_pid=nginx_pid
                    )
                elif name == "wrk":
                    result = run_wrk(
                        urls[scheme],
                        seconds=config.duration,
                        connections=config.concurrency,
                        nginx_pid=nginx_pid,
                    )
                else:
                    watch = {"nginx": nginx_pid}
                    if name == "blackbox":
                        watch["blackbox"] = bb.pid
                    spec = WorkerSpec(
                        kind=name.removesuffix("+uvloop"),
                        uvloop=name.endswith("+uvloop"),
                        url=urls[scheme],
                        ca=str(ca),
                        concurrency=config.concurrency,
                        duration=config.duration,
                        warmup=config.warmup,
                        timeout=config.timeout,
                        # The blackbox driver is not measured: it runs beside nginx.
                        cpu=SERVER_CPU if name == "blackbox" else PROBER_CPU,
                        watch=watch,
                        blackbox_port=bb.port,
                        module=MODULES[scheme],
                    )
                    result = run_worker(spec)
                results[scheme][name].append(result)
                progress(
                    f"probe: rep {rep + 1}/{config.repetitions} {scheme:5} {name:8} "
                    f"{result.rate:8,.0f}/s ok, {result.failed} failed, cpu "
                    + ", ".join(f"{k} {v:.0%}" for k, v in result.cpu.items())
                )
    return results


def _connection_cap(
    config: ProbeBenchConfig, ca: Path
) -> dict[tuple[str, float, float], RunResult]:
    """The bot and the bare loop starting probes at a fixed rate towards slow, healthy targets."""
    out: dict[tuple[str, float, float], RunResult] = {}
    with delay_server() as (port, pid):
        for rate, delay in config.cap_cases:
            for name in ("bot", "bare"):
                spec = WorkerSpec(
                    kind=name,
                    url=f"http://{LOOPBACK}:{port}/{round(delay * 1000)}",
                    ca=str(ca),
                    concurrency=0,
                    duration=config.cap_duration,
                    warmup=config.cap_warmup,
                    timeout=config.timeout,
                    cpu=PROBER_CPU,
                    watch={"server": pid},
                    keep_latencies=True,
                    rate=rate,
                )
                result = run_worker(spec)
                out[(name, rate, delay)] = result
                progress(
                    f"probe: cap {name:4} {rate:,.0f}/s started, {delay:g} s target: "
                    f"{result.rate:7,.0f}/s ok, {result.failed} failed, "
                    f"wall median {median(result.wall_ms or [0]):,.0f} ms"
                )
    return out


def _tls_libraries() -> str:
    """Which TLS library, and which OpenSSL, each contender's handshakes run on."""
    from OpenSSL import SSL  # what bot.probes.tls uses

    bundled = SSL.OpenSSL_version(SSL.OPENSSL_VERSION).decode()
    cli = subprocess.run(
        [_which("openssl"), "version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return (
        f"TLS libraries: outagebot's probes use pyOpenSSL {_version('pyopenssl')} on the "
        f"OpenSSL bundled with cryptography {_version('cryptography')} ({bundled}); bare "
        f"aiohttp uses Python's ssl ({ssl.OPENSSL_VERSION}); openssl s_time is {cli or '?'}; "
        "nginx uses the system's libssl; blackbox_exporter uses Go's crypto/tls."
    )


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def _contenders() -> tuple[str, ...]:
    has_uvloop = importlib.util.find_spec("uvloop") is not None
    return (*CONTENDERS, *UVLOOP_CONTENDERS) if has_uvloop else CONTENDERS


def _rates(runs: list[RunResult]) -> list[float]:
    return [r.rate for r in runs]


def _per_cpu_second(run: RunResult) -> float:
    """Successful probes per CPU-second of the prober: its rate were it alone on the core."""
    share = run.cpu.get(_prober_of(run), 0.0)
    return run.rate / share if share else 0.0


def _prober_of(run: RunResult) -> str:
    return "blackbox" if "blackbox" in run.cpu else "prober"


def _others(run: RunResult) -> float:
    """How much of the prober's CPU other processes (not ours) took during the window."""
    return max(0.0, run.cpu.get(f"cpu{PROBER_CPU}", 0.0) - run.cpu.get(_prober_of(run), 0.0))


def _verdicts(results: dict[str, dict[str, list[RunResult]]]) -> list[str]:
    lines = []
    for scheme, target in (("plain", TARGET_PLAIN), ("tls", TARGET_TLS)):
        runs = results[scheme]
        bot, bare, blackbox = (median(_rates(runs[k])) for k in ("bot", "bare", "blackbox"))
        bot_cpu, bare_cpu, blackbox_cpu = (
            median([_per_cpu_second(r) for r in runs[k]]) for k in ("bot", "bare", "blackbox")
        )
        verdict = "PASS" if bot >= target else "FAIL"
        verdict_cpu = "PASS" if bot_cpu >= target else "FAIL"
        lines.append(
            f"Target ≥ {target:,.0f} {scheme} probes/s on one core: {verdict} as measured "
            f"(outagebot {bot:,.0f}/s; same run: bare aiohttp {bare:,.0f}/s, blackbox_exporter "
            f"{blackbox:,.0f}/s); {verdict_cpu} per CPU-second of the prober, i.e. were the "
            f"core not shared (outagebot {bot_cpu:,.0f}/s; bare aiohttp {bare_cpu:,.0f}/s, "
            f"blackbox_exporter {blackbox_cpu:,.0f}/s)"
        )
    return lines


def _cpu(runs: list[RunResult], name: str) -> str:
    shares = [r.cpu[name] for r in runs if name in r.cpu]
    return f"{median(shares):.0%}" if shares else "–"


def _throughput_table(
    scheme: str, runs: dict[str, list[RunResult]], config: ProbeBenchConfig
) -> Table:
    what = (
        "http (new TCP connection per probe)"
        if scheme == "plain"
        else "https (TLS handshake per probe)"
    )
    table = Table(
        f"{what}: successful probes/s on one core",
        [
            "contender",
            "runs",
            "median probes/s",
            "min–max",
            "÷ bare aiohttp",
            "÷ blackbox",
            "per prober CPU-s",
            "÷ bare (per CPU-s)",
            "failed",
            "prober CPU",
            f"others on CPU {PROBER_CPU}",
            "nginx CPU",
            "driver CPU",
        ],
    )
    bare = median(_rates(runs["bare"]))
    blackbox = median(_rates(runs["blackbox"]))
    bare_cpu = median([_per_cpu_second(r) for r in runs["bare"]])
    for name in runs:
        rates = _rates(runs[name])
        mid = median(rates)
        per_cpu = median([_per_cpu_second(r) for r in runs[name]])
        errors: Counter[str] = Counter()
        for run in runs[name]:
            errors.update(run.errors)
        failed = sum(run.failed for run in runs[name])
        failed_text = f"{failed:,}" + (
            f" ({', '.join(f'{k} {v}' for k, v in errors.most_common(2))})" if failed else ""
        )
        table.add(
            LABELS[name],
            len(rates),
            f"{mid:,.0f}",
            f"{min(rates):,.0f}–{max(rates):,.0f}",
            ratio(mid, bare),
            ratio(mid, blackbox),
            f"{per_cpu:,.0f}",
            ratio(per_cpu, bare_cpu),
            failed_text,
            _cpu(runs[name], "blackbox" if name == "blackbox" else "prober"),
            f"{median([_others(r) for r in runs[name]]):.0%}",
            _cpu(runs[name], "nginx"),
            _cpu(runs[name], "driver") if name == "blackbox" else "–",
        )
    table.notes += [
        f"CPU columns: share of one core over the counted window, from /proc (the prober on "
        f"CPU {PROBER_CPU}; nginx and the blackbox driver on CPU {SERVER_CPU}). 'others': what "
        "other people's processes took of the prober's CPU (the machine is shared). A prober "
        "not near 100% while others took the rest was CPU-bound but sharing its core; "
        "'per prober CPU-s' (successful probes ÷ the prober's CPU seconds) is then the fairer "
        "figure for 'on one core'.",
        "blackbox_exporter's figure includes serving one /probe HTTP request per probe "
        "(that is how it is used); wrk is C with `Connection: close`, so its row shows what "
        "the server can take, for checking the ceiling against.",
        *(
            [
                "openssl s_time (https only) makes one connection at a time, so its wall-clock "
                "rate is bound by round trips; its per-CPU-s figure (user + system time) is what "
                "OpenSSL's own C client pays per verified handshake and GET on this libssl: how "
                "much of a Python client's TLS cost is the library's, not Python's."
            ]
            if "s_time" in runs
            else []
        ),
    ]
    return table


def _cap_table(cap: dict[tuple[str, float, float], RunResult], config: ProbeBenchConfig) -> Table:
    table = Table(
        "Connection cap: probes started at a fixed rate towards a healthy target that answers "
        f"after a delay (http, timeout {config.timeout:g} s)",
        [
            "contender",
            "started/s",
            "target delay",
            "in flight needed",
            "ok/s",
            "failed/s (timeouts)",
            "wall ms median / p99",
            "Outcome.latency_ms median / p99",
            "prober CPU",
        ],
    )
    for (name, rate, delay), run in cap.items():
        reported = run.reported_ms
        timeouts = run.errors.get("timeout", 0) + run.errors.get("TimeoutError", 0)
        table.add(
            "outagebot run_probe" if name == "bot" else "bare aiohttp (limit=0)",
            f"{rate:,.0f}",
            f"{delay * 1000:,.0f} ms",
            f"{rate * delay:,.0f}",
            f"{run.rate:,.0f}",
            f"{run.failed / run.seconds:,.0f} ({timeouts / run.seconds:,.0f})",
            f"{median(run.wall_ms):,.0f} / {p99(run.wall_ms):,.0f}" if run.wall_ms else "–",
            f"{median(reported):,.0f} / {p99(reported):,.0f}" if reported else "–",
            f"{run.cpu.get('prober', 0):.0%}",
        )
    table.notes += [
        "in flight needed: started/s × delay. A client that caps its connections below that "
        "queues the rest; if the wait counts toward the probe's timeout and latency (it does "
        "inside aiohttp's connection pool), probes of healthy targets fail as timeouts and "
        "those that get through report the queueing as latency. bare aiohttp has no cap.",
        f"Counted over {config.cap_duration:g} s after {config.cap_warmup:g} s of warm-up "
        "(long enough for a queue to reach the timeout).",
    ]
    return table


# ---- command line (the workers and the delay server run through here) -------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.probe_bench")
    sub = parser.add_subparsers(dest="command", required=True)
    worker = sub.add_parser("worker", help="internal: one contender, pinned, prints JSON")
    worker.add_argument("spec")
    server = sub.add_parser("delay-server", help="internal: a slow loopback HTTP target")
    server.add_argument("--lifetime", type=float, default=900.0)
    args = parser.parse_args(argv)
    if args.command == "worker":
        _worker_main(args.spec)
    else:
        os.sched_setaffinity(0, {SERVER_CPU})
        asyncio.run(_serve_delayed(args.lifetime))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
