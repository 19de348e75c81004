"""Architecture rules that code review alone would let slip."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHAT_LIBRARIES = ("discord", "slack_bolt", "slack_sdk")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _core_files() -> list[Path]:
    files = [*sorted((ROOT / "bot").rglob("*.py")), *sorted((ROOT / "commands").rglob("*.py"))]
    return [f for f in files if "adapters" not in f.relative_to(ROOT).parts]


@pytest.mark.parametrize("path", _core_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_core_and_commands_never_import_chat_libraries(path: Path) -> None:
    leaks = {n for n in _imports(path) if n.split(".")[0] in CHAT_LIBRARIES}
    assert not leaks, f"{path.relative_to(ROOT)} imports {sorted(leaks)}; only bot/adapters/ may"


def test_the_scan_sees_the_modules() -> None:
    # Guard against the test above passing because it scanned nothing.
    names = {p.name for p in _core_files()}
    assert {"verdict.py", "router.py", "isitdown.py"} <= names


@pytest.mark.parametrize("path", _core_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_sql_lives_in_the_store(path: Path) -> None:
    if "store" in path.relative_to(ROOT).parts:
        return
    source = path.read_text(encoding="utf-8")
    assert "conn.execute(" not in source and "sqlite3.connect(" not in source, path


def test_every_module_has_a_docstring() -> None:
    missing = [
        str(p.relative_to(ROOT))
        for p in [*_core_files(), *(ROOT / "bot" / "adapters").rglob("*.py")]
        if p.stat().st_size and ast.get_docstring(ast.parse(p.read_text(encoding="utf-8"))) is None
    ]
    assert not missing, missing
