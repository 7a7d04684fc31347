"""Migration operations after (or around) a run: rollback, reconciliation, the field-level
comparison they share, and API-call/duration estimates. Reports are in :mod:`runtime.reports`.
Import from the submodules (``runtime.operations.rollback`` ...)."""
