"""Probe kinds (http, tcp, dns) behind one registry; see ``bot.probes.base`` for the contract."""

from bot.probes.http_legacy import ProbeOutcome, probe_http

__all__ = ["ProbeOutcome", "probe_http"]
