"""Settings: config.toml read with tomllib, validated once at start into frozen, typed settings.

Every error names the key path (``services[3].targets.web: not a URL``) so an operator can fix the
file without reading code; nothing starts half-configured. Secrets are never in the file: the file
names the environment variable that holds each one (``token_env = "DISCORD_TOKEN"``).
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from bot.model import Catalog, Service, Target
from bot.regions import normalize_region
from bot.text import fold

EXAMPLE_CONFIG = Path(__file__).resolve().parent.parent / "config.example.toml"
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_KEY = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
_SECRET_WORDS = ("token", "secret", "password", "key")


class ConfigError(Exception):
    """The config is unusable; ``problems`` are ``path: what is wrong`` lines."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join(f"{source}: {p}" for p in problems))


# ---- field validators (each message says what is wrong and what would be right) ----------------


def _url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("not a URL (expected http:// or https:// with a host)")
    return value


def _probe_url(value: str) -> str:
    # Operators may also probe raw TCP ports and DNS names; chat users only ever give http(s).
    parts = urlsplit(value)
    if parts.scheme == "tcp":
        try:
            port = parts.port
        except ValueError:
            port = None
        if not parts.hostname or port is None:
            raise ValueError("not a TCP target (expected tcp://host:port)")
        return value
    if parts.scheme == "dns":
        if not parts.hostname:
            raise ValueError("not a DNS target (expected dns://name)")
        return value
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("not a URL (expected http://, https://, tcp://host:port or dns://name)")
    return value


def _region(value: str) -> str:
    code = normalize_region(value)
    if code is None:
        raise ValueError(f"{value!r} is not an ISO 3166 country code (e.g. US, GB, JP, FR)")
    return code


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not an IANA timezone (e.g. UTC, Europe/Paris)") from None
    return value


def _env_name(value: str) -> str:
    if not _ENV_NAME.match(value):
        raise ValueError(
            f"{value!r} is not an environment variable name: put the secret in a variable "
            "and write its NAME here (e.g. DISCORD_TOKEN)"
        )
    return value


def _listen(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{value!r} is not host:port (e.g. 127.0.0.1:8080)")
    return value


def _hhmm(value: str) -> str:
    if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
        raise ValueError(f"{value!r} is not a time of day HH:MM (e.g. 09:00)")
    return value


def _ip(value: str) -> str:
    import ipaddress

    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address (e.g. 192.0.2.10)") from None
    return value


def _cidr(value: str) -> str:
    import ipaddress

    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError(f"{value!r} is not an address range (e.g. 127.0.0.0/8)") from None
    return value


def _as_tuple(value: Any) -> Any:
    # TOML arrays arrive as lists; tuples keep the settings frozen all the way down.
    return tuple(value) if isinstance(value, list) else value


def _target_short_form(value: Any) -> Any:
    # `web = "https://..."` is shorthand for `web = { url = "https://..." }`.
    return {"url": value} if isinstance(value, str) else value


T = TypeVar("T")
FrozenList = Annotated[tuple[T, ...], BeforeValidator(_as_tuple)]
Url = Annotated[str, AfterValidator(_url)]
RegionCode = Annotated[str, AfterValidator(_region)]
EnvName = Annotated[str, AfterValidator(_env_name)]
Positive = Annotated[float, Field(gt=0)]
PositiveInt = Annotated[int, Field(gt=0)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class TargetSettings(_Section):
    url: Annotated[str, AfterValidator(_probe_url)]
    method: Literal["GET", "HEAD", "POST"] = "GET"
    expect_status: FrozenList[Annotated[int, Field(ge=100, le=599)]] = ()
    keyword: str | None = None
    keyword_absent: str | None = None
    max_latency_ms: Positive | None = None
    interval_seconds: PositiveInt | None = None
    expect_records: FrozenList[Annotated[str, Field(min_length=1)]] = ()


class ServiceSettings(_Section):
    key: Annotated[str, AfterValidator(lambda v: _check(_KEY.match(v), v, "a key of a-z, 0-9, -"))]
    name: Annotated[str, Field(min_length=1, max_length=64)]
    aliases: FrozenList[Annotated[str, Field(min_length=1, max_length=64)]] = ()
    targets: dict[str, Annotated[TargetSettings, BeforeValidator(_target_short_form)]] = {}
    status_page: Url | None = None
    tags: FrozenList[Annotated[str, Field(min_length=1, max_length=32)]] = ()


def _check(ok: object, value: str, what: str) -> str:
    if not ok:
        raise ValueError(f"{value!r} is not {what}")
    return value


class BotSettings(_Section):
    database: Annotated[str, Field(min_length=1)] = "outagebot.db"
    timezone: Annotated[str, AfterValidator(_timezone)] = "UTC"
    default_region: RegionCode = "US"
    language: Literal["en", "fr"] = "en"
    # How many services of its own one guild or workspace may add (/service add).
    services_per_tenant: Annotated[int, Field(ge=0, le=500)] = 25


class VerdictSettings(_Section):
    probe_window_minutes: PositiveInt = 10
    confirm_failures: PositiveInt = 3
    recover_successes: PositiveInt = 2
    down_share: Annotated[float, Field(gt=0, lt=1)] = 0.5
    slow_ms: Positive = 3000.0
    status_max_age_minutes: PositiveInt = 360


class ProbeSettings(_Section):
    enabled: bool = True
    interval_seconds: PositiveInt = 60
    timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 10.0
    allow_private: FrozenList[Annotated[str, AfterValidator(_cidr)]] = ()
    ports: FrozenList[Annotated[int, Field(ge=1, le=65535)]] = (80, 443, 8080, 8443)
    source_address: Annotated[str, AfterValidator(_ip)] | None = None
    max_in_flight: Annotated[int, Field(ge=1, le=10_000)] = 500
    local_agent: bool = True
    recheck: bool = True
    on_demand_timeout_seconds: Annotated[float, Field(gt=0, le=30)] = 10.0
    tls_warn_days: PositiveInt = 14
    raw_retention_days: PositiveInt = 7
    minute_retention_days: PositiveInt = 90


class AgentSettings(_Section):
    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")]
    region: RegionCode
    key_env: EnvName


class ReportSettings(_Section):
    window_minutes: PositiveInt = 30
    dedupe_minutes: PositiveInt = 60
    min_reports: PositiveInt = 5
    problem_factor: Annotated[float, Field(ge=1)] = 3.0
    possible_factor: Annotated[float, Field(ge=1)] = 1.5
    baseline_days: PositiveInt = 14
    tenant_cap: PositiveInt = 25
    user_hourly_limit: PositiveInt = 10


class ApiSettings(_Section):
    enabled: bool = True
    listen: Annotated[str, AfterValidator(_listen)] = "127.0.0.1:8080"


class DiscordSettings(_Section):
    enabled: bool = False
    token_env: EnvName = "DISCORD_TOKEN"  # noqa: S105 - a variable's name, not a secret
    application_id: Annotated[str, Field(pattern=r"^\d*$")] = ""
    guild_ids: FrozenList[Annotated[str, Field(pattern=r"^\d+$")]] = ()
    shards: Annotated[int, Field(ge=0)] = 0
    api_base: Url = "https://discord.com"
    gateway_url: Annotated[str, Field(pattern=r"^wss?://")] = "wss://gateway.discord.gg/"


class SlackSettings(_Section):
    enabled: bool = False
    mode: Literal["socket", "http"] = "socket"
    bot_token_env: EnvName = "SLACK_BOT_TOKEN"  # noqa: S105 - a variable's name, not a secret
    app_token_env: EnvName = "SLACK_APP_TOKEN"  # noqa: S105 - a variable's name, not a secret
    signing_secret_env: EnvName = "SLACK_SIGNING_SECRET"  # noqa: S105 - a variable's name, not a secret
    api_base: Url = "https://slack.com/api/"
    admins: FrozenList[Annotated[str, Field(pattern=r"^[UW][A-Z0-9]+$")]] = ()


class IncidentSettings(_Section):
    enabled: bool = True
    interval_seconds: Annotated[int, Field(ge=10, le=3600)] = 60
    open_after_passes: Annotated[int, Field(ge=1, le=10)] = 2
    resolve_after_minutes: Annotated[int, Field(ge=0, le=1440)] = 10
    # "platform:channel" (e.g. "discord:123456789", "slack:C0123", "console:ops") for the one
    # "bot degraded" notice when storage fails; "" for none.
    ops_channel: Annotated[str, Field(pattern=r"^$|^(discord|slack|console):[A-Za-z0-9_-]+$")] = ""


class DigestSettings(_Section):
    enabled: bool = True
    time: Annotated[str, AfterValidator(_hhmm)] = "09:00"
    weekly_day: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] | None = None


class Settings(_Section):
    """The whole validated config. Frozen: nothing changes it after start."""

    bot: BotSettings = BotSettings()
    services: FrozenList[ServiceSettings] = ()
    agents: FrozenList[AgentSettings] = ()
    verdict: VerdictSettings = VerdictSettings()
    probes: ProbeSettings = ProbeSettings()
    reports: ReportSettings = ReportSettings()
    api: ApiSettings = ApiSettings()
    discord: DiscordSettings = DiscordSettings()
    slack: SlackSettings = SlackSettings()
    incidents: IncidentSettings = IncidentSettings()
    digest: DigestSettings = DigestSettings()

    @model_validator(mode="after")
    def _agent_ids_are_unique(self) -> Settings:
        seen: dict[str, int] = {}
        for i, agent in enumerate(self.agents):
            if agent.id in seen:
                raise ValueError(
                    f"agents[{i}].id: {agent.id!r} is already used by agents[{seen[agent.id]}]"
                )
            seen[agent.id] = i
        return self

    @model_validator(mode="after")
    def _names_are_unique(self) -> Settings:
        # Keys, names and aliases must resolve to one service each, or "/isitdown x" is ambiguous.
        # A service may repeat its own name as an alias; another service may not use it.
        seen: dict[str, tuple[int, str]] = {}
        for i, svc in enumerate(self.services):
            for label, value in [("key", svc.key), ("name", svc.name)] + [
                (f"aliases[{j}]", a) for j, a in enumerate(svc.aliases)
            ]:
                folded = fold(value)
                owner = seen.get(folded)
                if owner is not None and owner[0] != i:
                    raise ValueError(
                        f"services[{i}].{label}: {value!r} is already used by service "
                        f"{owner[1]!r} (services[{owner[0]}]); every key, name and alias "
                        "must be unique"
                    )
                seen[folded] = (i, svc.key)
        return self

    def catalog(self) -> Catalog:
        return Catalog(tuple(_to_service(s) for s in self.services))


def _to_service(s: ServiceSettings) -> Service:
    targets = tuple(
        Target(
            kind=kind,
            url=t.url,
            method=t.method,
            expect_status=tuple(t.expect_status),
            keyword=t.keyword,
            keyword_absent=t.keyword_absent,
            max_latency_ms=t.max_latency_ms,
            interval_seconds=t.interval_seconds,
            expect_records=tuple(t.expect_records),
        )
        for kind, t in s.targets.items()
    )
    return Service(
        key=s.key,
        name=s.name,
        aliases=tuple(s.aliases),
        targets=targets,
        status_page=s.status_page,
        tags=tuple(s.tags),
    )


# ---- loading ---------------------------------------------------------------------------------


def resolve_config_path(explicit: str | None) -> Path:
    """--config, else ./config.toml, else $OUTAGEBOT_CONFIG, else the shipped example."""
    if explicit:
        return Path(explicit)
    local = Path("config.toml")
    if local.exists():
        return local
    env = os.environ.get("OUTAGEBOT_CONFIG")
    if env:
        return Path(env)
    return EXAMPLE_CONFIG


def load_settings(path: Path) -> Settings:
    """Read and validate ``path``; raise ConfigError listing every problem found."""
    source = str(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(source, ["file not found (pass --config PATH)"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(source, [f"cannot read the file: {exc}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, [f"not valid TOML: {exc}"]) from None
    return parse_settings(raw, source=source)


def parse_settings(raw: dict[str, Any], *, source: str = "config") -> Settings:
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(source, [_describe(e) for e in exc.errors()]) from None


def _describe(error: Any) -> str:
    loc = [p for p in error["loc"] if p not in ("str", "TargetSettings", "function-after")]
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    kind = error["type"]
    if kind == "extra_forbidden":
        last = str(loc[-1]) if loc else ""
        hint = "unknown key (check the spelling against config.example.toml)"
        if any(w in last.lower() for w in _SECRET_WORDS) and not last.endswith("_env"):
            hint += (
                "; secrets never go in the file: set an environment variable and name it in *_env"
            )
        return f"{path}: {hint}"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{path or 'config'}: {message}" if path else message
