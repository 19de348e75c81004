"""Config: the shipped example loads; every bad value is refused with its key path and a hint."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

from bot.config import (
    EXAMPLE_CONFIG,
    ConfigError,
    load_settings,
    resolve_config_path,
)
from bot.resolve import Resolver

TWO_SERVICES = """
[[services]]
key = "alpha"
name = "Alpha"

[[services]]
key = "beta"
name = "Beta"
"""


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text))
    return caught.value.problems


# ---- the shipped example --------------------------------------------------------------------


def test_shipped_example_loads_with_a_full_catalog() -> None:
    settings = load_settings(EXAMPLE_CONFIG)
    keys = [s.key for s in settings.services]
    assert len(keys) >= 20
    assert len(set(keys)) == len(keys)
    twitter = next(s for s in settings.services if s.key == "twitter")
    assert "x" in twitter.aliases
    assert {"web", "api"} <= set(twitter.targets)


def test_example_alias_x_resolves_to_twitter() -> None:
    catalog = load_settings(EXAMPLE_CONFIG).catalog()
    found = Resolver(catalog).resolve("X")
    assert found is not None and found.key == "twitter"


def test_example_keeps_secrets_out_of_the_file() -> None:
    settings = load_settings(EXAMPLE_CONFIG)
    assert settings.discord.token_env == "DISCORD_TOKEN"
    assert settings.slack.bot_token_env == "SLACK_BOT_TOKEN"
    assert settings.discord.enabled is False and settings.slack.enabled is False


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, ""))
    assert list(settings.services) == []
    assert settings.bot.timezone == "UTC"
    assert settings.api.listen == "127.0.0.1:8080"


# ---- each error names the key path ----------------------------------------------------------

BAD_CONFIGS: dict[str, tuple[str, list[str]]] = {
    # name: (TOML text, substrings the single reported problem must contain)
    "target_url_ftp": (
        TWO_SERVICES + 'targets = { web = "ftp://example.com/" }\n',
        ["services[1].targets.web", "not a URL"],
    ),
    "target_url_not_a_url": (
        TWO_SERVICES + 'targets = { web = "not a url" }\n',
        ["services[1].targets.web", "not a URL"],
    ),
    "target_url_expanded_form": (
        TWO_SERVICES + 'targets = { api = { url = "https://", expect_status = [401] } }\n',
        ["services[1].targets.api.url", "not a URL"],
    ),
    "status_page_not_a_url": (
        TWO_SERVICES + 'status_page = "status.example.com"\n',
        ["services[1].status_page", "not a URL"],
    ),
    "unknown_top_level_key": (
        "[bots]\ntimezone = 'UTC'\n",
        ["bots", "unknown key", "spelling"],
    ),
    "unknown_nested_key": (
        "[bot]\ntimezon = 'UTC'\n",
        ["bot.timezon", "unknown key", "spelling"],
    ),
    "unknown_key_in_a_service": (
        TWO_SERVICES + 'url = "https://beta.example/"\n',
        ["services[1].url", "unknown key"],
    ),
    "secret_in_discord_section": (
        '[discord]\ntoken = "MTIz.not-a-real-token"\n',
        ["discord.token", "unknown key", "secrets never go in the file", "_env"],
    ),
    "secret_in_slack_section": (
        '[slack]\nsigning_secret = "abc"\n',
        ["slack.signing_secret", "secrets never go in the file"],
    ),
    "string_for_an_int": (
        '[verdict]\nconfirm_failures = "3"\n',
        ["verdict.confirm_failures", "integer"],
    ),
    "string_for_a_bool": (
        '[api]\nenabled = "yes"\n',
        ["api.enabled", "boolean"],
    ),
    "zero_for_a_positive_count": (
        "[reports]\nmin_reports = 0\n",
        ["reports.min_reports", "greater than 0"],
    ),
    "share_out_of_range": (
        "[verdict]\ndown_share = 1.5\n",
        ["verdict.down_share", "less than 1"],
    ),
    "bad_timezone": (
        '[bot]\ntimezone = "Mars/Olympus_Mons"\n',
        ["bot.timezone", "Mars/Olympus_Mons", "IANA timezone"],
    ),
    "bad_default_region": (
        '[bot]\ndefault_region = "XX"\n',
        ["bot.default_region", "'XX'", "ISO 3166"],
    ),
    "bad_probe_region_in_list": (
        '[[agents]]\nid = "jp"\nregion = "ZZ"\nkey_env = "K"\n',
        ["agents[0].region", "'ZZ'"],
    ),
    "bad_language": (
        '[bot]\nlanguage = "de"\n',
        ["bot.language", "'en'", "'fr'"],
    ),
    "listen_without_port": (
        '[api]\nlisten = "localhost"\n',
        ["api.listen", "host:port"],
    ),
    "listen_port_too_big": (
        '[api]\nlisten = "127.0.0.1:70000"\n',
        ["api.listen", "host:port"],
    ),
    "env_var_name_with_space": (
        '[discord]\ntoken_env = "my token"\n',
        ["discord.token_env", "not an environment variable name", "DISCORD_TOKEN"],
    ),
    "env_var_name_is_a_token": (
        '[slack]\nbot_token_env = "xoxb-123-456"\n',
        ["slack.bot_token_env", "not an environment variable name"],
    ),
    "bad_digest_time": (
        '[digest]\ntime = "25:00"\n',
        ["digest.time", "HH:MM"],
    ),
    "bad_allow_private_range": (
        '[probes]\nallow_private = ["localhost"]\n',
        ["probes.allow_private[0]", "address range"],
    ),
    "bad_service_key": (
        '[[services]]\nkey = "Has Spaces"\nname = "X"\n',
        ["services[0].key", "'Has Spaces'"],
    ),
    "invalid_toml_syntax": (
        "[bot\ntimezone = 'UTC'\n",
        ["not valid TOML", "line 1"],
    ),
}


@pytest.mark.parametrize("name", list(BAD_CONFIGS))
def test_bad_config_is_refused_naming_the_key(tmp_path: Path, name: str) -> None:
    text, expected = BAD_CONFIGS[name]
    problems = problems_of(tmp_path, text)
    assert len(problems) == 1, problems
    for fragment in expected:
        assert fragment in problems[0], (fragment, problems[0])


def test_error_message_starts_with_the_file_name(tmp_path: Path) -> None:
    path = write(tmp_path, '[bot]\ntimezone = "Nowhere/Nothing"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert str(caught.value).startswith(f"{path}: bot.timezone: ")


def test_duplicate_alias_across_services_names_both(tmp_path: Path) -> None:
    text = """
[[services]]
key = "twitter"
name = "X (Twitter)"
aliases = ["x", "birdsite"]

[[services]]
key = "xbox"
name = "Xbox Live"
aliases = ["xbl", "X"]
"""
    problems = problems_of(tmp_path, text)
    assert len(problems) == 1
    # The second service by its key path, the first by its key.
    assert "services[1].aliases[1]" in problems[0]
    assert "'twitter'" in problems[0] and "services[0]" in problems[0]
    assert "unique" in problems[0]


def test_names_compare_ignoring_case_and_accents(tmp_path: Path) -> None:
    text = """
[[services]]
key = "cafe"
name = "Café"

[[services]]
key = "cafe-two"
name = "CAFE"
"""
    problems = problems_of(tmp_path, text)
    assert "services[1].name" in problems[0] and "'cafe'" in problems[0]


def test_an_alias_may_repeat_its_own_key() -> None:
    # The example lists "twitter" among twitter's own aliases: not a clash.
    settings = load_settings(EXAMPLE_CONFIG)
    twitter = next(s for s in settings.services if s.key == "twitter")
    assert "twitter" in twitter.aliases


# Regression: two [[services]] with one key used to be accepted.
def test_duplicate_service_key_is_refused(tmp_path: Path) -> None:
    text = """
[[services]]
key = "alpha"
name = "Alpha"

[[services]]
key = "alpha"
name = "Another Alpha"
"""
    problems = problems_of(tmp_path, text)
    assert "services[1].key" in problems[0]


def test_several_errors_are_reported_at_once(tmp_path: Path) -> None:
    text = """
[bot]
timezone = "Nowhere/Nothing"
default_region = "XX"
colour = "blue"

[api]
listen = "bad"

[[services]]
key = "a"
name = "A"
targets = { web = "ftp://a.example/" }
"""
    problems = problems_of(tmp_path, text)
    paths = sorted(p.split(":")[0] for p in problems)
    assert paths == sorted(
        [
            "bot.timezone",
            "bot.default_region",
            "bot.colour",
            "api.listen",
            "services[0].targets.web.url",
        ]
    )


def test_missing_file_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path / "nope.toml")
    assert caught.value.problems == ["file not found (pass --config PATH)"]
    assert "nope.toml" in str(caught.value)


def test_non_utf8_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('[bot]\ntimezone = "Europe/Zürich"\n'.encode("latin-1"))
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert "cannot read the file" in caught.value.problems[0]


# ---- accepted forms and frozen settings -----------------------------------------------------


def test_uk_is_accepted_for_gb(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, '[bot]\ndefault_region = "UK"\n'))
    assert settings.bot.default_region == "GB"


def test_region_codes_are_case_insensitive(tmp_path: Path) -> None:
    text = "".join(
        f'[[agents]]\nid = "a{i}"\nregion = "{r}"\nkey_env = "K{i}"\n'
        for i, r in enumerate(["us", "uk", "jp"])
    )
    settings = load_settings(write(tmp_path, text))
    assert [a.region for a in settings.agents] == ["US", "GB", "JP"]


def test_short_and_expanded_target_forms(tmp_path: Path) -> None:
    text = """
[[services]]
key = "svc"
name = "Svc"

[services.targets]
web = "https://svc.example/"

[services.targets.api]
url = "https://api.svc.example/"
expect_status = [401]
method = "HEAD"
"""
    service = load_settings(write(tmp_path, text)).catalog().services[0]
    web, api = service.target("web"), service.target("api")
    assert web is not None and web.url == "https://svc.example/" and web.expect_status == ()
    assert api is not None and api.expect_status == (401,) and api.method == "HEAD"


def test_settings_are_frozen() -> None:
    settings = load_settings(EXAMPLE_CONFIG)
    with pytest.raises(pydantic.ValidationError):
        settings.bot.timezone = "Europe/Paris"  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        settings.api = settings.api  # type: ignore[misc]
    assert settings.bot.timezone == "UTC"


# Regression: list settings used to be mutable lists.
def test_settings_lists_cannot_be_changed_in_place() -> None:
    settings = load_settings(EXAMPLE_CONFIG)
    with pytest.raises((TypeError, AttributeError, pydantic.ValidationError)):
        settings.probes.ports.append(22)  # type: ignore[attr-defined]
    with pytest.raises((TypeError, AttributeError, pydantic.ValidationError)):
        settings.services.append(settings.services[0])  # type: ignore[attr-defined]
    assert 22 not in settings.probes.ports


# ---- where the config comes from ------------------------------------------------------------


@pytest.fixture
def cwd_with_local_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write(tmp_path, TWO_SERVICES)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OUTAGEBOT_CONFIG", str(tmp_path / "from-env.toml"))
    return tmp_path


def test_explicit_config_beats_everything(cwd_with_local_config: Path) -> None:
    assert resolve_config_path("chosen.toml") == Path("chosen.toml")


def test_local_config_beats_environment(cwd_with_local_config: Path) -> None:
    path = resolve_config_path(None)
    assert path == Path("config.toml")
    assert path.resolve() == (cwd_with_local_config / "config.toml").resolve()


def test_environment_beats_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no config.toml here
    monkeypatch.setenv("OUTAGEBOT_CONFIG", str(tmp_path / "from-env.toml"))
    assert resolve_config_path(None) == tmp_path / "from-env.toml"


def test_example_is_the_last_resort(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OUTAGEBOT_CONFIG", raising=False)
    assert resolve_config_path(None) == EXAMPLE_CONFIG
    assert EXAMPLE_CONFIG.is_file()
