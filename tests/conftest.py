"""Shared test fixtures.

`shared_dir` is the steering repo's ../shared folder (vendor specs, reference data). The product never
reads it at run time; tests that need it skip with a clear reason when it is absent, so a user's clean
clone still passes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared is absent (vendor specs and reference data live outside the repo)")
    return SHARED
