"""Shared test fixtures.

`shared_dir` is the steering repo's ../shared folder (vendor specs, reference data). The product never
reads it at run time; tests that need it skip with a clear reason when it is absent, so a user's clean
clone still passes.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
SHM = Path("/dev/shm")


def pytest_configure(config) -> None:
    """``tmp_path`` on tmpfs when there is one (``/dev/shm``), unless ``--basetemp`` or
    ``PYTEST_DEBUG_TEMPROOT`` says otherwise. The state store fsyncs every commit
    (``synchronous=FULL``: power-loss durability); a test's SIGKILLs and reopenings behave the
    same on tmpfs, and thousands of fsyncs on a busy disk were a large share of the suite's wall
    time. Under xdist the controller picks the base dir, so the workers follow it. The
    ``tmp_path_retention_policy`` in pyproject keeps only failed tests' directories, so passing
    runs leave nothing in memory."""
    if config.option.basetemp or os.environ.get("PYTEST_DEBUG_TEMPROOT"):
        return
    if SHM.is_dir() and os.access(SHM, os.W_OK):
        os.environ["PYTEST_DEBUG_TEMPROOT"] = str(SHM)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared is absent (vendor specs and reference data live outside the repo)")
    return SHARED
