"""Migration operations after (or around) a run: rollback, reconciliation, the field-level
comparison they share, and API-call/duration estimates. Reports are in :mod:`runtime.reports`."""

from runtime.operations.compare import FieldDiff, compare_field, compare_record
from runtime.operations.estimate import Estimate, StepEstimate, estimate_plan, parse_counts
from runtime.operations.reconcile import Reconciliation, reconcile_run
from runtime.operations.recording import RecordingDestination
from runtime.operations.rollback import (
    Conflict,
    RollbackOptions,
    RollbackResult,
    RollbackStopped,
    rollback_all,
    rollback_run,
)

__all__ = [
    "Conflict", "Estimate", "FieldDiff", "Reconciliation", "RecordingDestination",
    "RollbackOptions", "RollbackResult", "RollbackStopped", "StepEstimate", "compare_field",
    "compare_record", "estimate_plan", "parse_counts", "reconcile_run", "rollback_all",
    "rollback_run",
]
