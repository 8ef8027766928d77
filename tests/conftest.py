"""Fixtures shared by the test modules."""

from __future__ import annotations

import sys

import pytest

from smime_collect.testing import IssuedChain, ManualClock, TestCA


@pytest.fixture
def fake_time() -> ManualClock:
    """The client's clock and sleep: time moves only when the client sleeps; waits are recorded."""
    return ManualClock(now=1000.0)


@pytest.fixture(params=["aiohttp", "httpcore"])
def transport_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test on the aiohttp transport and on the core-only httpcore one."""
    if request.param == "httpcore":
        monkeypatch.setitem(sys.modules, "httpx_aiohttp", None)
    return str(request.param)


@pytest.fixture(scope="module")
def issued() -> IssuedChain:
    """An end entity for alice@example.com, one intermediate and a root (a module may override)."""
    return TestCA.create().issue_smime("alice@example.com", common_name="Alice")
