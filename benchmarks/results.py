"""RESULTS.md: a header describing the machine, then the latest section of each benchmark.

Each section is also kept in ``benchmarks/data/results-<mode>/`` so that ``--only import`` refreshes
the import figures without dropping the verdict figures of an earlier run; every section says when
and with which command it was measured, and its ratios always compare paths from that one run.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from .common import Machine, Section, data_dir

# Every benchmark by name, in the order of the report (also the order `make bench` runs them).
ORDER = (
    "verdict",
    "import",
    "storage",
    "detect",
    "probe",
    "schedule",
    "alert",
    "fanout",
    "slack",
    "discord",
)


def stamp(section: Section, command: str) -> str:
    """The section's Markdown, headed by when and how it was measured."""
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = section.markdown()
    title, _, rest = body.partition("\n")
    return f"{title}\n\nMeasured {when} with `{command}`.\n{rest}"


def save_section(mode: str, section: Section, command: str) -> None:
    folder = data_dir() / f"results-{mode}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{section.name}.md").write_text(stamp(section, command), encoding="utf-8")


def write_results(path: Path, mode: str, machine: Machine) -> None:
    folder = data_dir() / f"results-{mode}"
    parts = [
        "# outagebot benchmarks",
        "",
        f"Generated {datetime.now(UTC).strftime('%Y-%m-%d')} by `python -m benchmarks` "
        f"({mode} mode). Run it again to refresh; data is generated under benchmarks/data/ "
        "(git-ignored).",
        "",
        *[f"- {line}" for line in machine.lines()],
        "- The machine is shared and noisy: compare the ratios within a table (measured in "
        "the same run) rather than absolute times across runs.",
        "",
    ]
    for name in ORDER:
        section = folder / f"{name}.md"
        if section.exists():
            parts.append(section.read_text(encoding="utf-8"))
    path.write_text("\n".join(parts).rstrip() + "\n", encoding="utf-8")
