"""Test-wide settings: headless SDL, loopback-only LSL, reproducible hypothesis."""

from __future__ import annotations

import os
from pathlib import Path

# Before pygame or pylsl is imported anywhere.
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ["LSLAPICFG"] = str(Path(__file__).resolve().parents[1] / "sensors" / "lsl_api.cfg")

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TEST_DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real recordings beside the project; skips the test when they are absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real recordings not found at {SHARED_DATA} (shared data folder absent)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def test_data() -> Path:
    """Small real records shipped with the tests (tests/data, with attribution)."""
    return TEST_DATA
