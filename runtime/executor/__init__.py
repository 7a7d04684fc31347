"""The executor: extract -> transform -> stage -> preflight -> load, journaled and resumable."""

from runtime.executor.load import ATTACHMENT_OBJECTS, Loader, LoadOptions, LoadStats, RunStopped
from runtime.executor.run import (
    InvariantError,
    RunOptions,
    RunResult,
    check_invariant,
    load_compiled,
    run_migration,
)

__all__ = [
    "ATTACHMENT_OBJECTS", "InvariantError", "LoadOptions", "LoadStats", "Loader", "RunOptions",
    "RunResult", "RunStopped", "check_invariant", "load_compiled", "run_migration",
]
