"""Autocomplete choices: services by what is typed, problems and regions, never more than 25."""

from __future__ import annotations

from pathlib import Path

from bot.complete import MAX_CHOICES, Completer
from bot.config import load_settings
from bot.model import Catalog, Service
from bot.resolve import Resolver
from commands import COMMANDS

SPECS = {name: m.SPEC for name, m in COMMANDS.items()}


def _completer() -> Completer:
    catalog = load_settings(Path("config.example.toml")).catalog()
    return Completer(Resolver(catalog), SPECS)


def test_services_match_names_aliases_and_accents() -> None:
    c = _completer()
    assert c.complete("isitdown", "service", "twi")[0].value == "twitter"
    assert "twitter" in [ch.value for ch in c.complete("isitdown", "service", "X")]
    assert c.complete("report", "service", "GITH")[0].value == "github"


def test_empty_input_offers_at_most_the_platform_limit() -> None:
    choices = _completer().complete("isitdown", "service", "")
    assert 0 < len(choices) <= MAX_CHOICES
    assert len({ch.value for ch in choices}) == len(choices)


def test_problem_choices_are_the_problem_kinds() -> None:
    choices = _completer().complete("report", "problem", "web")
    assert [ch.value for ch in choices] == ["website"]


def test_region_by_code_or_name_and_uk_alias() -> None:
    c = _completer()
    assert c.complete("report", "region", "uk")[0].value == "GB"
    assert c.complete("report", "region", "japa")[0].value == "JP"
    assert len(c.complete("report", "region", "")) == MAX_CHOICES
    assert c.complete("report", "region", "", lang="fr")[0].name.endswith("(US)")


def test_unknown_command_or_free_text_parameter_has_no_choices() -> None:
    c = _completer()
    assert c.complete("nosuch", "service", "tw") == []
    assert c.complete("report", "note", "tw") == []
    assert c.complete("isitdown", "nosuch", "tw") == []


def test_a_servers_own_services_are_offered_there_only_by_their_typed_key() -> None:
    catalog = load_settings(Path("config.example.toml")).catalog()
    shared = Resolver(catalog)
    own = Resolver(Catalog((*catalog.services, Service("discord:g1/wiki", "Team Wiki", ("wiki",)))))
    completer = Completer(
        shared, SPECS, resolver_for=lambda platform, tenant: own if tenant == "g1" else shared
    )
    mine = completer.complete("isitdown", "service", "team w", platform="discord", tenant="g1")
    assert [(c.name, c.value) for c in mine] == [("Team Wiki", "wiki")]
    assert (
        completer.complete("isitdown", "service", "team w", platform="discord", tenant="g2") == []
    )


def test_the_users_own_region_comes_first_even_outside_the_common_ones() -> None:
    choices = _completer().complete("report", "region", "", region="KR")
    assert choices[0].value == "KR" and len(choices) == MAX_CHOICES
    typed = _completer().complete("report", "region", "jap", region="KR")
    assert typed[0].value == "JP"  # what is typed wins
