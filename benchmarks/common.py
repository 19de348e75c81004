"""Shared helpers: paths, percentiles, timing, the machine description and result tables."""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import resource
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
DATA_DIR = BENCH_DIR / "data"
PROJECT_DIR = BENCH_DIR.parent
VENV_BIN = Path(sys.executable).parent


def data_dir() -> Path:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    return DATA_DIR


def remove_database(path: Path) -> None:
    """Delete an SQLite file with its WAL and shared-memory companions."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def database_bytes(path: Path) -> int:
    return sum(
        Path(f"{path}{suffix}").stat().st_size
        for suffix in ("", "-wal")
        if Path(f"{path}{suffix}").exists()
    )


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def p99(values: Sequence[float]) -> float:
    """The 99th percentile (linear interpolation); with few samples it approaches the maximum."""
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[98]


def now_ns() -> int:
    return time.perf_counter_ns()


def preemptions() -> int:
    """Involuntary context switches of the calling thread so far: times another task took its CPU.

    A call timed across one of them includes however long that task ran (Linux's getrusage).
    """
    return resource.getrusage(resource.RUSAGE_THREAD).ru_nivcsw


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:,.1f} {unit}" if unit != "B" else f"{n} B"
        size /= 1024
    return f"{n} B"  # unreachable; keeps type checkers calm


def ratio(value: float, reference: float) -> str:
    return f"{value / reference:.2f}×" if reference else "n/a"


@dataclass(frozen=True, slots=True)
class Machine:
    arch: str
    cpu: str
    cores: int
    python: str
    sqlite: str

    def lines(self) -> list[str]:
        return [
            f"Machine: {self.arch}, {self.cpu}, {self.cores} cores (nproc)",
            f"Python {self.python}, SQLite {self.sqlite}",
        ]


def describe_machine() -> Machine:
    return Machine(
        arch=platform.machine(),
        cpu=_cpu_model(),
        cores=len(os.sched_getaffinity(0)),  # what nproc prints: the CPUs we may run on
        python=platform.python_version(),
        sqlite=sqlite3.sqlite_version,
    )


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


@dataclass(slots=True)
class Table:
    """A result table printed to stdout as aligned text and written to RESULTS.md as Markdown."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *cells: object) -> None:
        self.rows.append([str(c) for c in cells])

    def markdown(self) -> str:
        out = [f"### {self.title}", ""]
        out.append("| " + " | ".join(self.columns) + " |")
        align = [":--"] + ["--:"] * (len(self.columns) - 1)
        out.append("|" + "|".join(align) + "|")
        out += ["| " + " | ".join(row) + " |" for row in self.rows]
        if self.notes:
            out.append("")
            out += [f"- {note}" for note in self.notes]
        return "\n".join(out) + "\n"

    def text(self) -> str:
        widths = [
            max(len(self.columns[i]), *(len(row[i]) for row in self.rows)) if self.rows else 0
            for i in range(len(self.columns))
        ]

        def line(cells: Sequence[str]) -> str:
            first = cells[0].ljust(widths[0])
            rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
            return "  ".join([first, *rest])

        out = [self.title, line(self.columns), "  ".join("-" * w for w in widths)]
        out += [line(row) for row in self.rows]
        out += [f"  * {note}" for note in self.notes]
        return "\n".join(out) + "\n"


@dataclass(slots=True)
class Section:
    """One benchmark's results: facts (one line each) and tables."""

    name: str
    title: str
    facts: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)

    def markdown(self) -> str:
        out = [f"## {self.title}", ""]
        out += [f"- {fact}" for fact in self.facts]
        out.append("")
        out += [table.markdown() for table in self.tables]
        return "\n".join(out)

    def text(self) -> str:
        out = [f"== {self.title} =="]
        out += [f"  {fact}" for fact in self.facts]
        out.append("")
        out += [table.text() for table in self.tables]
        return "\n".join(out)


def progress(message: str) -> None:
    """Progress goes to stderr so stdout holds only the tables."""
    print(message, file=sys.stderr, flush=True)


def code_version() -> str:
    """The git commit plus a hash of the bot's source files this process loaded.

    Others edit bot/ while benchmarks run; comparing this before and after a benchmark that
    starts subprocesses tells whether they ran the same code as this process.
    """
    head = _git("rev-parse", "--short", "HEAD") or "unknown commit"
    dirty = bool(_git("status", "--porcelain", "--", "bot", "commands"))
    digest = hashlib.sha256()
    for path in _watched_files():
        digest.update(str(path.relative_to(PROJECT_DIR)).encode())
        digest.update(path.read_bytes() if path.exists() else b"<deleted>")
    changes = " + uncommitted changes" if dirty else ""
    return f"{head}{changes} (loaded bot/ sources sha256 {digest.hexdigest()[:12]})"


_WATCHED: list[Path] = []


def _watched_files() -> list[Path]:
    # Fixed at the first call: the modules imported by then, plus the CLI's entry points.
    if not _WATCHED:
        bot_dir = PROJECT_DIR / "bot"
        files = {bot_dir / "cli.py", bot_dir / "__main__.py"}
        for module in list(sys.modules.values()):
            path = Path(getattr(module, "__file__", None) or "/")
            if path.suffix == ".py" and path.is_relative_to(bot_dir):
                files.add(path)
        _WATCHED.extend(sorted(files))
    return _WATCHED


def _git(*args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args], cwd=PROJECT_DIR, capture_output=True, text=True, check=False
        )
    except OSError:
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and of its live descendants, if it starts any.

    From /proc/PID/stat (fields 14 and 15, in clock ticks) and /proc/PID/task/*/children.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0  # exited meanwhile
    fields = stat[stat.rindex(")") + 2 :].split()
    total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            for child in (task / "children").read_text().split():
                total += cpu_seconds(int(child))
    return total


def wait_for_message(
    conn: Connection, bot: subprocess.Popen[bytes], seconds: float, what: str
) -> None:
    """Wait for a helper process's next message on ``conn``; give up early if the bot exited."""
    deadline = time.monotonic() + seconds
    while not conn.poll(0.5):
        if bot.poll() is not None:
            raise RuntimeError(f"{what} (the bot exited with {bot.returncode})")
        if time.monotonic() > deadline:
            raise RuntimeError(what)
