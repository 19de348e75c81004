"""The slash commands: one module per command, each with a SPEC and an async ``run``.

``COMMANDS`` is the registry every adapter registers from; a parity test checks that each adapter
offers exactly these, with the same parameters.
"""

from __future__ import annotations

from collections.abc import Mapping

from bot.router import CommandModule
from commands import (
    agents,
    digest,
    help,
    incidents,
    isitdown,
    maintenance,
    region_default,
    report,
    service_add,
    service_edit,
    service_remove,
    services,
    subscribe,
    subscriptions,
    unsubscribe,
    worksforme,
)

# A name with a space ("service add") is a subcommand: Discord groups it under /service, Slack
# and the console read the first word of the text after /service.
COMMANDS: Mapping[str, CommandModule] = {
    m.SPEC.name: m
    for m in (
        isitdown,
        report,
        worksforme,
        services,
        incidents,
        subscribe,
        unsubscribe,
        subscriptions,
        digest,
        help,
        agents,
        service_add,
        service_edit,
        service_remove,
        region_default,
        maintenance,
    )
}
