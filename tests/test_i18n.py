"""The message catalog: every key the code uses exists, and translations keep the placeholders."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

from bot.i18n import CATALOGS, EN, Message, RegionList, join_names, render

ROOT = Path(__file__).resolve().parent.parent
# Message("key", ...), text("key", ...), error("key", ...), info("key", ...)
_KEY_USE = re.compile(r"""\b(?:Message|text|error|info)\(\s*f?["']([a-z_]+\.[a-z_.{}]+)["']""")


def _used_keys() -> set[str]:
    keys: set[str] = set()
    for path in [*(ROOT / "bot").rglob("*.py"), *(ROOT / "commands").rglob("*.py")]:
        keys.update(_KEY_USE.findall(path.read_text(encoding="utf-8")))
    return keys


def test_every_used_key_exists_in_english() -> None:
    used = _used_keys()
    assert len(used) > 30  # the scan works
    plain = {k for k in used if "{" not in k}
    assert sorted(plain - EN.keys()) == []
    # f-string keys such as "problem.{...}" must exist for every expansion they can take.
    for prefix in {k.split("{")[0] for k in used if "{" in k}:
        assert any(key.startswith(prefix) for key in EN), prefix


@pytest.mark.parametrize("lang", [lang for lang in CATALOGS if lang != "en"])
def test_translations_keep_placeholders(lang: str) -> None:
    for key, template in CATALOGS[lang].items():
        assert key in EN, f"{lang} has {key} which English lacks"
        fields = {f for _, f, _, _ in string.Formatter().parse(template) if f}
        english = {f for _, f, _, _ in string.Formatter().parse(EN[key]) if f}
        assert fields == english, key


def test_region_lists_read_as_prose() -> None:
    assert render(Message("headline.down", name="X", regions=RegionList(("JP", "GB")))) == (
        "X is down for everyone: failing in Japan and the UK."
    )
    assert join_names(["a", "b", "c"]) == "a, b and c"
    assert join_names(["Japon", "Royaume-Uni"], "fr") == "Japon et Royaume-Uni"


def test_unknown_language_falls_back_to_english() -> None:
    assert render(Message("cmd.help"), "xx") == EN["cmd.help"]
    # A key French does not translate falls back to English.
    assert render(Message("console.hint"), "fr") == EN["console.hint"]
