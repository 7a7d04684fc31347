"""Per-migration state: runs, the operation journal, the id map, quarantine, outcomes, watermarks.

See :mod:`runtime.state.store` for the durability rules and the journal protocol.
"""

from runtime.state.masking import mask
from runtime.state.schema import LATEST_VERSION, MIGRATIONS, StateError
from runtime.state.store import (
    COUNT_KEYS,
    DuplicateOutcomeError,
    IdEntry,
    Op,
    OpResult,
    Outcome,
    PlannedOp,
    QuarantineItem,
    RunInfo,
    StateStore,
    Watermark,
    canonical_json,
    request_hash,
)

__all__ = [
    "COUNT_KEYS",
    "DuplicateOutcomeError",
    "IdEntry",
    "LATEST_VERSION",
    "MIGRATIONS",
    "Op",
    "OpResult",
    "Outcome",
    "PlannedOp",
    "QuarantineItem",
    "RunInfo",
    "StateError",
    "StateStore",
    "Watermark",
    "canonical_json",
    "mask",
    "request_hash",
]
