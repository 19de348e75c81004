"""The demo's services and what is wrong with each, so an offline /isitdown has varied answers.

Regions are simulated by source address: each region's probes leave from its own loopback address
(127.0.0.11 for the US, ...), and the demo target server fails or slows requests by the address
they come from. The probes themselves are real HTTP requests over loopback.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.model import Service, Target

# Region -> the loopback address its probes leave from.
REGION_ADDRESSES: dict[str, str] = {
    "US": "127.0.0.11",
    "JP": "127.0.0.12",
    "GB": "127.0.0.13",
    "FR": "127.0.0.14",
}


@dataclass(frozen=True, slots=True)
class Scenario:
    key: str
    name: str
    aliases: tuple[str, ...]
    failing_regions: frozenset[str] = frozenset()
    delay_ms: int = 0  # added to every answer (a slow service)
    story: str = ""


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("acme", "Acme Cloud", ("acme cloud",), story="up everywhere"),
    Scenario(
        "globex",
        "Globex Chat",
        ("globex chat",),
        frozenset({"JP", "GB"}),
        story="down in Japan and the UK, up in the US and France",
    ),
    Scenario(
        "initech",
        "Initech Social",
        ("initech social",),
        story="probes pass, but users report website problems (the Twitter 2022-12-28 shape)",
    ),
    Scenario(
        "umbrella",
        "Umbrella Mail",
        ("umbrella mail",),
        frozenset(REGION_ADDRESSES),
        story="down for everyone",
    ),
    Scenario("hooli", "Hooli Search", ("hooli search",), delay_ms=400, story="up but slow"),
)

SLOW_THRESHOLD_MS = 250.0


def demo_services(base_url: str) -> tuple[Service, ...]:
    """The demo catalog entries, pointing at the demo target server at ``base_url``."""
    return tuple(
        Service(
            key=s.key,
            name=s.name,
            aliases=s.aliases,
            targets=(
                Target("web", f"{base_url}/{s.key}/web", max_latency_ms=SLOW_THRESHOLD_MS),
                Target("api", f"{base_url}/{s.key}/api", max_latency_ms=SLOW_THRESHOLD_MS),
            ),
            tags=("demo",),
        )
        for s in SCENARIOS
    )
