"""Fixtures shared by the test modules."""

from __future__ import annotations

import pytest

from smime_collect.testing import ManualClock


@pytest.fixture
def fake_time() -> ManualClock:
    """The client's clock and sleep: time moves only when the client sleeps; waits are recorded."""
    return ManualClock(now=1000.0)
