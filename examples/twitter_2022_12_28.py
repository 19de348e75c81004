"""Write the founding example as JSON Lines for ``outagebot import``: Twitter on 2022-12-28.

Downdetector counted over 10,000 reports in the US and about 2,500 each in Japan and the UK,
mostly about the website on desktop while the mobile app worked; the official status page said
all systems were operational; the owner answered a user "works for me". Probes of the public
endpoints passed. Two weeks of ordinary report history before it give the usual level.

    python examples/twitter_2022_12_28.py > twitter.jsonl
    outagebot import twitter.jsonl
    outagebot status twitter --at 2022-12-28T21:30:00Z
"""

from __future__ import annotations

import json
import random
import sys
from datetime import UTC, datetime, timedelta

PEAK = datetime(2022, 12, 28, 21, 30, tzinfo=UTC)
OUTAGE = {"US": 10_000, "JP": 2_500, "GB": 2_500}
USUAL_PER_HOUR = {"US": 24, "JP": 6, "GB": 6, "FR": 3}
PROBLEMS = ("website",) * 85 + ("app",) * 9 + ("login",) * 6


def _z(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _report(at: datetime, region: str, problem: str, user: str) -> dict[str, object]:
    return {
        "type": "report",
        "at": _z(at),
        "service": "twitter",
        "region": region,
        "problem": problem,
        "user": user,
    }


def events(rng: random.Random) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    # Ordinary history: 14 days, each region at its usual hourly rate.
    for hour in range(14 * 24, 0, -1):
        start = PEAK - timedelta(hours=hour)
        for region, rate in USUAL_PER_HOUR.items():
            for _ in range(rng.randint(rate // 2, rate + rate // 2)):
                at = start + timedelta(seconds=rng.randrange(3600))
                out.append(_report(at, region, rng.choice(PROBLEMS), f"h{rng.getrandbits(40):x}"))
    # The outage: reports over the 30 minutes before the peak.
    for region, count in OUTAGE.items():
        for i in range(count):
            at = PEAK - timedelta(seconds=rng.randrange(1800))
            out.append(_report(at, region, rng.choice(PROBLEMS), f"{region.lower()}{i}"))
    # Probes of the web and API endpoints passed everywhere.
    for minute in range(10, -1, -1):
        at = PEAK - timedelta(minutes=minute)
        for region in ("US", "JP", "GB", "FR"):
            for target in ("web", "api"):
                out.append(
                    {
                        "type": "probe",
                        "at": _z(at),
                        "service": "twitter",
                        "target": target,
                        "region": region,
                        "ok": True,
                        "status": 200,
                        "latency_ms": round(rng.uniform(80, 240), 1),
                    }
                )
    out.append(
        {
            "type": "status_page",
            "at": _z(PEAK - timedelta(minutes=20)),
            "service": "twitter",
            "indicator": "none",
            "description": "All Systems Operational",
        }
    )
    out.append(
        {
            "type": "works_for_me",
            "at": _z(PEAK - timedelta(minutes=4)),
            "service": "twitter",
            "region": "US",
            "user": "owner",
        }
    )
    return out


def main() -> None:
    for event in events(random.Random(20221228)):
        sys.stdout.write(json.dumps(event, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
