"""Shared fixtures: where the real data lives, and how tests that need it skip."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "ner-data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/ner-data, or a skip with the reason; never a skip when CI is set."""
    if SHARED_DATA.is_dir():
        return SHARED_DATA
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but the real data folder {SHARED_DATA} is absent")
    pytest.skip(f"real data folder {SHARED_DATA} is absent (a user's fresh clone)")


@pytest.fixture(autouse=True)
def _isolated_prefect_home(tmp_path_factory, monkeypatch):
    """Keep Prefect's database out of the user's home during tests."""
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path_factory.getbasetemp() / "prefect-home"))
