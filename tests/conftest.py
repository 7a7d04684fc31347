"""Shared test fixtures.

`shared_dir` is the steering repo's ../shared folder (vendor specs, reference data). The product never
reads it at run time; tests that need it skip with a clear reason when it is absent, so a user's clean
clone still passes.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.scratch import fast_dir

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


# The modules that cost most (each ~15-50 s of one core), run first: `make test` keeps a module on
# one worker (`-n 2 --dist loadscope`), so a long module collected last (the crash tests are under
# tests/runtime) would leave one worker finishing it alone; started first, the short modules fill
# in behind them. Order inside a module is untouched.
SLOW_FIRST = (
    "tests/runtime/test_crash_resume.py",
    "tests/mappings/test_other_pairs.py",
    "tests/mappings/test_zoho_pairs.py",
    "tests/mappings/test_samples.py",
    "tests/dialects/test_pipedrive_e2e.py",
    "tests/dialects/test_freshsales_e2e.py",
)


def pytest_collection_modifyitems(config, items) -> None:
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}

    def key(item) -> int:
        try:
            return rank.get(item.path.relative_to(ROOT).as_posix(), len(rank))
        except ValueError:  # outside the repo
            return len(rank)

    items.sort(key=key)  # stable: collection order otherwise


def pytest_configure(config) -> None:
    """``tmp_path`` on tmpfs when there is one with room (:mod:`tests.scratch`), unless ``--basetemp`` or
    ``PYTEST_DEBUG_TEMPROOT`` says otherwise. The state store fsyncs every commit
    (``synchronous=FULL``: power-loss durability); a test's SIGKILLs and reopenings behave the
    same on tmpfs, and thousands of fsyncs on a busy disk were a large share of the suite's wall
    time. Under xdist the controller picks the base dir, so the workers follow it. The
    ``tmp_path_retention_policy`` in pyproject keeps only failed tests' directories, so passing
    runs leave nothing in memory."""
    if config.option.basetemp or os.environ.get("PYTEST_DEBUG_TEMPROOT"):
        return
    shm = fast_dir()
    if shm is not None:
        os.environ["PYTEST_DEBUG_TEMPROOT"] = shm


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared is absent (vendor specs and reference data live outside the repo)")
    return SHARED
