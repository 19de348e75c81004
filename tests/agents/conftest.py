"""Fixtures for the agent tests: a running core on loopback and an HTTP client for it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from agent_harness import Core, make_catalog


@pytest.fixture
async def core(tmp_path: Path) -> AsyncIterator[Core]:
    running = await Core(tmp_path / "core.db", make_catalog()).start()
    yield running
    await running.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
