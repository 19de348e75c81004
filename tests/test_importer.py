"""``outagebot import``: a valid file lands whole and idempotently; one bad line lands nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot import importer
from bot.config import EXAMPLE_CONFIG, load_settings
from bot.importer import MAX_ERRORS_SHOWN, MAX_LINE_BYTES, ImportErrors, import_file
from bot.model import Catalog
from bot.resolve import Resolver
from bot.store import EvidenceWindows, ImportCounts, Store

DATA = Path(__file__).parent / "data"
VALID = DATA / "import_valid.jsonl"
AT = datetime(2022, 12, 28, 21, 30, tzinfo=UTC)
HOUR = 3600
WINDOWS = EvidenceWindows(
    probe_seconds=600, report_seconds=1800, baseline_days=14, status_max_age_seconds=6 * HOUR
)
DROP = object()  # marks a key to leave out of a line


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_settings(EXAMPLE_CONFIG).catalog()


@pytest.fixture
async def store(tmp_path: Path, catalog: Catalog):
    s = await Store.open(tmp_path / "x.db", catalog)
    yield s
    await s.close()


async def run_import(path: Path, store: Store, catalog: Catalog, progress: Any = None):
    result = await import_file(
        path, store, Resolver(catalog), dedupe_seconds=HOUR, progress=progress
    )
    return result.counts


def line(kind: str = "report", **changes: Any) -> str:
    """One valid event of ``kind`` as a JSON line, with ``changes`` applied (DROP removes)."""
    base: dict[str, dict[str, Any]] = {
        "report": {
            "type": "report",
            "at": "2022-12-28T21:20:00Z",
            "service": "twitter",
            "region": "US",
            "user": "u1",
            "problem": "website",
        },
        "works_for_me": {
            "type": "works_for_me",
            "at": "2022-12-28T21:20:00Z",
            "service": "twitter",
            "region": "US",
            "user": "u1",
        },
        "probe": {
            "type": "probe",
            "at": "2022-12-28T21:25:00Z",
            "service": "twitter",
            "target": "web",
            "region": "US",
            "ok": True,
            "status": 200,
            "latency_ms": 90.0,
        },
        "status_page": {
            "type": "status_page",
            "at": "2022-12-28T21:20:00Z",
            "service": "twitter",
            "indicator": "none",
            "description": "All Systems Operational",
        },
    }
    obj = {**base[kind], **changes}
    return json.dumps({k: v for k, v in obj.items() if v is not DROP})


def write_lines(tmp_path: Path, lines: list[str | bytes], name: str = "in.jsonl") -> Path:
    path = tmp_path / name
    path.write_bytes(b"".join((x if isinstance(x, bytes) else x.encode()) + b"\n" for x in lines))
    return path


# ---- a valid file ---------------------------------------------------------------------------


async def test_valid_file_imports_all_four_types(store: Store, catalog: Catalog) -> None:
    counts = await run_import(VALID, store, catalog)
    assert counts == ImportCounts(reports=5, counted=4, works_for_me=2, probes=3, status=2)
    tables = await store.table_counts()
    assert tables["reports"] == 5
    assert tables["works_for_me"] == 2
    assert tables["probe_results"] == 3
    assert tables["status_snapshots"] == 2


async def test_imported_events_become_evidence(store: Store, catalog: Catalog) -> None:
    await run_import(VALID, store, catalog)
    twitter = catalog.get("twitter")
    assert twitter is not None
    ev = await store.evidence(twitter, AT, WINDOWS)
    # "x" and "Twitter" resolve to twitter; "uk" is stored as GB; +01:00 is converted to UTC;
    # alice's second report in the same hour is a comment, not a count.
    assert ev.reports == {("US", "website"): 1, ("JP", "app"): 1, ("GB", "login"): 1}
    assert ev.works_for_me == {"US": 1}
    assert ev.status is not None and ev.status.description == "All Systems Operational"
    assert sorted((p.target, p.region, p.ok) for p in ev.probes) == [
        ("api", "JP", False),
        ("web", "US", True),
    ]
    # Milliseconds survive the import.
    assert any(p.at == pytest.approx(AT.timestamp() - 29.75) for p in ev.probes)


async def test_second_report_in_the_same_hour_counts_once(
    tmp_path: Path, store: Store, catalog: Catalog
) -> None:
    path = write_lines(
        tmp_path,
        [
            line(at="2022-12-28T21:05:00Z", user="alice"),
            line(at="2022-12-28T21:50:00Z", user="alice", note="still down"),
            line(at="2022-12-28T22:05:00Z", user="alice"),  # the next hour counts again
        ],
    )
    counts = await run_import(path, store, catalog)
    assert (counts.reports, counts.counted) == (3, 2)


async def test_rerunning_an_import_adds_nothing(store: Store, catalog: Catalog) -> None:
    await run_import(VALID, store, catalog)
    before = await store.table_counts()
    again = await import_file(VALID, store, Resolver(catalog), dedupe_seconds=HOUR)
    assert again.already_imported and again.counts == ImportCounts()  # all zero
    assert await store.table_counts() == before
    twitter = catalog.get("twitter")
    assert twitter is not None
    ev = await store.evidence(twitter, AT, WINDOWS)
    assert sum(ev.reports.values()) == 3  # rollups were not counted twice


async def test_blank_lines_are_skipped_but_still_numbered(
    tmp_path: Path, store: Store, catalog: Catalog
) -> None:
    path = write_lines(tmp_path, ["", line(user="a"), "   ", "\t", line(user="b"), ""])
    counts = await run_import(path, store, catalog)
    assert counts.reports == 2
    bad = write_lines(tmp_path, ["", "", line(region="XX")], name="bad.jsonl")
    with pytest.raises(ImportErrors) as caught:
        await run_import(bad, store, catalog)
    assert [n for n, _ in caught.value.problems] == [3]


async def test_crlf_line_endings_are_accepted(
    tmp_path: Path, store: Store, catalog: Catalog
) -> None:
    path = tmp_path / "windows.jsonl"
    path.write_bytes((line(user="a") + "\r\n" + line(user="b") + "\r\n").encode())
    counts = await run_import(path, store, catalog)
    assert counts.reports == 2


async def test_uk_is_accepted_for_gb(tmp_path: Path, store: Store, catalog: Catalog) -> None:
    path = write_lines(
        tmp_path,
        [
            line(region="UK", user="a"),
            line("works_for_me", region="uk", user="b"),
            line("probe", region="UK"),
        ],
    )
    await run_import(path, store, catalog)
    twitter = catalog.get("twitter")
    assert twitter is not None
    ev = await store.evidence(twitter, AT, WINDOWS)
    assert ev.reports == {("GB", "website"): 1}
    assert ev.works_for_me == {"GB": 1}
    assert [p.region for p in ev.probes] == ["GB"]


async def test_progress_reports_bytes_up_to_the_whole_file(store: Store, catalog: Catalog) -> None:
    calls: list[tuple[str, int, int]] = []
    await run_import(VALID, store, catalog, progress=lambda *c: calls.append(c))
    size = VALID.stat().st_size
    assert calls and all(phase == "import" and total == size for phase, _, total in calls)
    assert calls[-1][1] == size


# ---- bad lines: each names its line number and what to fix -------------------------------

BAD_LINES: dict[str, tuple[str | bytes, str]] = {
    # name: (the bad line, a fragment of its message)
    "invalid_json": ('{"type": "report", "at": ', "not valid JSON"),
    "trailing_garbage": (line() + " x", "not valid JSON"),
    "not_an_object_list": ("[1, 2]", "expected a JSON object"),
    "not_an_object_string": ('"report"', "expected a JSON object"),
    "not_an_object_null": ("null", "expected a JSON object"),
    "unknown_type": (line(type="tweet"), '"type" must be one of'),
    "missing_type": (line(type=DROP), '"type" must be one of'),
    "missing_key": (line(user=DROP), "report is missing user"),
    "missing_keys_listed": (line("probe", ok=DROP, target=DROP), "probe is missing ok, target"),
    "unknown_key": (line(usr="bob"), "unknown key usr"),
    "unknown_service": (line(service="myspace"), "unknown service 'myspace'"),
    "service_not_a_string": (line(service=42), '"service" must be a service key'),
    "empty_service": (line(service="  "), '"service" must be a service key'),
    "bad_region": (line(region="XX"), "\"region\" 'XX' is not a country code"),
    "region_not_a_string": (line(region=1), "is not a country code"),
    "zero_width_in_region": (line(region="U\u200bS"), "is not a country code"),
    "bad_problem": (line(problem="everything"), "\"problem\" 'everything' is not one of"),
    "naive_timestamp": (line(at="2022-12-28T21:20:00"), "has no timezone; add Z for UTC"),
    "bad_timestamp": (line(at="yesterday"), "is not an ISO 8601 time"),
    "epoch_number_timestamp": (line(at=1672262400), '"at" must be an ISO 8601 time string'),
    "offset_out_of_range": (line(at="2022-12-28T21:20:00+25:00"), "is not an ISO 8601 time"),
    "empty_user": (line(user=""), '"user" must be a non-empty string'),
    "user_too_long": (line(user="u" * 129), "at most 128 characters"),
    "note_not_a_string": (line(note=["a"]), '"note" must be a string'),
    "ok_is_a_string": (line("probe", ok="true"), '"ok" must be true or false'),
    "ok_is_a_number": (line("probe", ok=1), '"ok" must be true or false'),
    "status_too_high": (line("probe", status=600), '"status" must be an HTTP status'),
    "status_too_low": (line("probe", status=99), '"status" must be an HTTP status'),
    "status_is_a_string": (line("probe", status="200"), '"status" must be an HTTP status'),
    "status_is_a_bool": (line("probe", status=True), '"status" must be an HTTP status'),
    "negative_latency": (line("probe", latency_ms=-1), '"latency_ms" must be a number'),
    # JSON has no NaN or Infinity; the parser refuses the bare tokens as invalid JSON.
    "nan_latency": (line("probe").replace("90.0", "NaN"), "not valid JSON"),
    "infinite_latency": (line("probe").replace("90.0", "Infinity"), "not valid JSON"),
    "latency_is_a_string": (line("probe", latency_ms="fast"), '"latency_ms" must be a number'),
    "error_too_long": (line("probe", ok=False, error="e" * 201), '"error" must be a string'),
    "unknown_target": (line("probe", target="mobile"), "unknown target 'mobile' for twitter"),
    "target_of_another_service": (
        line("probe", service="google", target="api"),
        "unknown target 'api' for google",
    ),
    "bad_indicator": (line("status_page", indicator="red"), "\"indicator\" 'red' is not one of"),
    "empty_description": (line("status_page", description=""), '"description" must be'),
    "too_long_line": (line(note="n" * MAX_LINE_BYTES), f"longer than {MAX_LINE_BYTES} bytes"),
    "not_utf8": (line(user="cafe").encode().replace(b"cafe", b"caf\xe9"), "not UTF-8"),
    "utf16_bom": (b"\xff\xfe" + line().encode(), "not UTF-8"),
}


@pytest.mark.parametrize("name", list(BAD_LINES))
async def test_bad_line_is_reported_with_its_number(
    tmp_path: Path, store: Store, catalog: Catalog, name: str
) -> None:
    bad, fragment = BAD_LINES[name]
    path = write_lines(tmp_path, [line(user="first"), bad, line(user="third")])
    before = await store.table_counts()
    with pytest.raises(ImportErrors) as caught:
        await run_import(path, store, catalog)
    assert caught.value.total == 1
    [(number, message)] = caught.value.problems
    assert number == 2
    assert fragment in message, message
    assert await store.table_counts() == before


async def test_one_bad_line_among_many_imports_nothing(
    tmp_path: Path, store: Store, catalog: Catalog
) -> None:
    good = [line(user=f"user{i}", at=f"2022-12-28T21:{i % 60:02d}:00Z") for i in range(300)]
    good += [line("probe", at=f"2022-12-28T21:{i:02d}:00Z") for i in range(30)]
    good += [line("status_page"), line("works_for_me")]
    lines: list[str | bytes] = [*good[:200], line(service="myspace"), *good[200:]]
    path = write_lines(tmp_path, lines)
    before = await store.table_counts()
    with pytest.raises(ImportErrors) as caught:
        await run_import(path, store, catalog)
    assert caught.value.problems == [
        (201, "unknown service 'myspace'; see /services or [[services]] in the config")
    ]
    assert "Nothing was imported" in str(caught.value)
    assert await store.table_counts() == before


async def test_error_report_stops_at_twenty_lines(
    tmp_path: Path, store: Store, catalog: Catalog
) -> None:
    lines: list[str | bytes] = [line(region="XX", user=f"u{i}") for i in range(25)]
    path = write_lines(tmp_path, lines)
    with pytest.raises(ImportErrors) as caught:
        await run_import(path, store, catalog)
    errors = caught.value
    assert errors.total == 25
    assert [n for n, _ in errors.problems] == list(range(1, MAX_ERRORS_SHOWN + 1))
    text = str(errors).splitlines()
    assert sum(1 for t in text if t.startswith("line ")) == MAX_ERRORS_SHOWN
    assert text[0].startswith("line 1: ")
    assert "... and 5 more problems" in text
    assert text[-1] == "Nothing was imported. Fix these lines and run the import again."


async def test_every_problem_is_counted_not_only_the_first_kind(
    tmp_path: Path, store: Store, catalog: Catalog
) -> None:
    path = write_lines(
        tmp_path,
        [
            line(region="XX"),
            line(),
            "{",
            line("probe", ok="yes"),
            line(at="2022-12-28"),
        ],
    )
    with pytest.raises(ImportErrors) as caught:
        await run_import(path, store, catalog)
    assert [n for n, _ in caught.value.problems] == [1, 3, 4, 5]


# ---- values of the wrong shape -----------------------------------------------------------


# Regression: an unhashable "type" used to crash with TypeError.
async def test_type_that_is_a_list_is_a_bad_line(
    tmp_path: Path, store: Store, catalog: Catalog
) -> None:
    path = write_lines(tmp_path, [line(type=["report"]), line(type={"report": 1})])
    with pytest.raises(ImportErrors) as caught:
        await run_import(path, store, catalog)
    assert [n for n, _ in caught.value.problems] == [1, 2]
    assert all('"type" must be one of' in m for _, m in caught.value.problems)


# Regression: an unhashable "indicator" used to crash with TypeError.
async def test_indicator_that_is_a_list_is_a_bad_line(
    tmp_path: Path, store: Store, catalog: Catalog
) -> None:
    path = write_lines(tmp_path, [line("status_page", indicator=["none"])])
    with pytest.raises(ImportErrors) as caught:
        await run_import(path, store, catalog)
    [(number, message)] = caught.value.problems
    assert number == 1 and '"indicator"' in message and "is not one of" in message


async def test_an_interrupted_import_resumes_after_its_last_committed_batch(
    store: Store, catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small batches so the file spans several; the second run must finish the job exactly.
    monkeypatch.setattr(importer, "BATCH_SIZE", 2)
    path = tmp_path / "many.jsonl"
    path.write_text(
        "\n".join(line(user=f"u{i}", at=f"2022-12-28T21:{i:02d}:00Z") for i in range(9)) + "\n"
    )

    class Interrupted(Exception):
        pass

    calls = []

    def stop_after_two_batches(phase: str, done: int, total: int) -> None:
        # Called as each batch fills: the third call comes after two batches were handed over.
        calls.append(done)
        if len(calls) == 3:
            raise Interrupted

    with pytest.raises(Interrupted):
        await run_import(path, store, catalog, progress=stop_after_two_batches)
    assert (await store.table_counts())["reports"] == 4  # two whole batches, nothing partial
    result = await import_file(path, store, Resolver(catalog), dedupe_seconds=HOUR)
    assert (result.batches, result.skipped_batches) == (5, 2)
    assert result.counts.reports == 5
    assert (await store.table_counts())["reports"] == 9


async def test_a_bad_line_after_written_batches_leaves_nothing_behind(
    store: Store, catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer, "BATCH_SIZE", 2)
    before = await store.table_counts()
    lines = [line(user=f"u{i}", at=f"2022-12-28T21:{i:02d}:00Z") for i in range(7)]
    lines += [line("probe", at=f"2022-12-28T21:{i:02d}:00Z") for i in range(3)]
    lines.append(line(region="Atlantis"))  # the last line is bad
    path = tmp_path / "late-error.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ImportErrors) as caught:
        await run_import(path, store, catalog)
    assert caught.value.problems[0][0] == 11
    # Batches were written while the file was read; all of them, rollups included, are gone.
    assert await store.table_counts() == before
    twitter = catalog.get("twitter")
    assert twitter is not None
    ev = await store.evidence(twitter, AT, WINDOWS)
    assert ev.reports == {} and ev.probes == ()
    # The file can be fixed and imported afterwards.
    path.write_text("\n".join(lines[:-1]) + "\n")
    assert (await run_import(path, store, catalog)).reports == 7


async def test_check_only_writes_nothing(store: Store, catalog: Catalog) -> None:
    before = await store.table_counts()
    assert importer.check_file(VALID, Resolver(catalog), store.service_ids()) > 0
    assert await store.table_counts() == before


@pytest.mark.parametrize("parallel", [False, True], ids=["in-process", "child-process"])
async def test_both_checking_paths_give_the_same_result(
    store: Store,
    catalog: Catalog,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    parallel: bool,
) -> None:
    monkeypatch.setattr(importer, "BATCH_SIZE", 3)
    lines = [line(user=f"u{i}", at=f"2022-12-28T21:{i:02d}:00Z") for i in range(10)]
    lines += [line("probe", at=f"2022-12-28T21:{i:02d}:00Z") for i in range(4)]
    path = tmp_path / "both.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = await import_file(
        path, store, Resolver(catalog), dedupe_seconds=HOUR, parallel=parallel
    )
    assert (result.counts.reports, result.counts.probes, result.events, result.batches) == (
        10,
        4,
        14,
        5,
    )


async def test_child_process_check_compensates_a_late_bad_line(
    store: Store, catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer, "BATCH_SIZE", 2)
    before = await store.table_counts()
    lines = [line(user=f"u{i}", at=f"2022-12-28T21:{i:02d}:00Z") for i in range(9)]
    lines.append('{"type": "report", "oops"}')
    path = tmp_path / "late.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ImportErrors) as caught:
        await import_file(path, store, Resolver(catalog), dedupe_seconds=HOUR, parallel=True)
    assert caught.value.problems[0][0] == 10 and "not valid JSON" in caught.value.problems[0][1]
    assert await store.table_counts() == before


def _report_state(db: Path) -> tuple[list[Any], ...]:
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        return tuple(
            conn.execute(sql).fetchall()
            for sql in (
                "SELECT at, user, problem, counted FROM reports ORDER BY at, user, counted",
                "SELECT minute, region, problem, n FROM report_minutes ORDER BY 1, 2, 3",
                "SELECT hour, region, n FROM report_hours ORDER BY 1, 2",
            )
        )
    finally:
        conn.close()


async def test_counting_decided_while_checking_matches_the_exact_way(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The child decides "counted" without the database; the result must be the same anyway.

    Duplicates across batch edges, a window revisited after the child forgot it (an unsorted
    file), and a second file overlapping the first (the database already counts those users).
    """
    monkeypatch.setattr(importer, "BATCH_SIZE", 4)
    first = [
        line(user=f"u{i % 5}", at=f"2022-12-28T2{i // 10}:{i % 60:02d}:00Z") for i in range(30)
    ]
    first += [
        line(user="u1", at="2022-12-28T20:59:00Z"),
        line(user="late", at="2022-12-28T20:01:00Z"),
    ]
    second = [line(user=f"u{i % 7}", at=f"2022-12-28T21:{i:02d}:30Z") for i in range(12)]
    files = []
    for name, lines in (("first", first), ("second", second)):
        files.append(tmp_path / f"{name}.jsonl")
        files[-1].write_text("\n".join(lines) + "\n")
    states = []
    for parallel in (False, True):
        db = tmp_path / f"{parallel}.db"
        store = await Store.open(db, catalog)
        try:
            for path in files:
                await import_file(
                    path, store, Resolver(catalog), dedupe_seconds=HOUR, parallel=parallel
                )
        finally:
            await store.close()
        states.append(_report_state(db))
    exact, prepared = states
    assert prepared == exact
    counted = [row for row in exact[0] if row[3]]
    assert len(counted) < len(exact[0])  # the duplicates were really there
    assert sum(n for *_, n in exact[2]) == len(counted)
