"""The destination interface: what the executor needs from any place records are loaded into.

Implementations: the JSONL directory writer (dry runs), the generic sandbox store (SQLite, schema
enforcing, fault injecting), and each CRM dialect's httpx client. Batch operations return one result
per item **matched by the item's key, never by position**: bulk APIs answer in any order, and a
result list that does not cover every key is itself an error the executor treats as "outcome
unknown" for the missing keys.

Errors: a per-record problem is a ``WriteResult`` with ``ok=False``. A whole call that did not
happen or whose outcome is unknown raises ``TransientError`` (retry later, honouring
``retry_after``) or ``FatalError`` (stop the run: bad credentials, missing permission, quota
exhausted for the day). A transient error after the destination may have committed ("lost
response") is indistinguishable from one before it, which is why the executor journals and looks
records up by external id before re-sending.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from runtime.schema.model import SystemSchema

__all__ = [
    "RateLimit", "DestinationCapabilities", "WriteItem", "WriteResult", "User",
    "DestinationError", "TransientError", "FatalError", "Destination",
]


class RateLimit(BaseModel):
    """How the destination meters calls. ``per_window`` requests (or credits/tokens) per
    ``window_seconds``; ``cost`` says what one write call of n records costs."""

    model_config = ConfigDict(extra="forbid")

    kind: str = "requests"  # requests | credits | tokens
    per_window: float = 0  # 0: unlimited
    window_seconds: float = 1.0
    write_cost_per_record: float = 0.0  # e.g. Zoho: 0.1 credit per record (ceil(n/10) a call)
    write_cost_per_call: float = 1.0
    read_cost_per_call: float = 1.0
    concurrency: int = 4


class DestinationCapabilities(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    batch_size: int = 100
    native_upsert: bool = True  # upsert by external id in one call
    bulk: bool = False
    # records per batch the executor may hand over when a bulk API takes bigger batches than a
    # synchronous call (the client picks sync or bulk per batch); None: batch_size
    bulk_batch_size: int | None = None
    attachment_limit_bytes: int | None = None
    rate_limit: RateLimit = Field(default_factory=RateLimit)
    max_retries: int = 6
    # find_by_external_id takes ``hints={external_id: {"sent_at", "payload"}}`` from the run
    # journal (when the op was first sent, what it sent) to narrow its search after a lost
    # response or a restart; destinations without it are called with the ids alone
    find_hints: bool = False


@dataclass
class WriteItem:
    """One record to write. ``key`` correlates the result (unique within the call; the executor
    uses the external id). ``record`` holds target fields with references and owners already
    resolved to destination ids. ``dest_id`` is set for updates."""

    key: str
    external_id: str | None
    record: dict[str, Any]
    dest_id: str | None = None


@dataclass
class WriteResult:
    key: str
    ok: bool
    dest_id: str | None = None
    created: bool | None = None  # upsert: True when a new record was made
    error: str | None = None  # human message, no field values
    code: str | None = None  # vendor error code (INVALID_DATA, REQUIRED_FIELD_MISSING...)
    field: str | None = None
    retryable: bool = False  # per-record transient failure (e.g. RECORD_LOCKED)


@dataclass(frozen=True)
class User:
    id: str
    email: str
    name: str = ""
    active: bool = True


class DestinationError(Exception):
    """Base of the errors a destination raises for a whole call."""


class TransientError(DestinationError):
    """The call failed or its outcome is unknown; retry later. ``retry_after`` in seconds when the
    destination said (at least 1 s is honoured when it says 0)."""

    def __init__(self, message: str, *, retry_after: float | None = None,
                 maybe_committed: bool = True) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.maybe_committed = maybe_committed


class FatalError(DestinationError):
    """Retrying will not help (credentials, permissions, daily quota, schema): stop the run
    cleanly with everything journaled."""


@runtime_checkable
class Destination(Protocol):
    capabilities: DestinationCapabilities

    def schema(self) -> SystemSchema: ...

    def create(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]: ...

    def upsert(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        """Create or update by external id (only when ``capabilities.native_upsert``)."""
        ...

    def update(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]: ...

    def delete(self, obj: str, ids: Sequence[str]) -> list[WriteResult]:
        """Results keyed by destination id."""
        ...

    def get(self, obj: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Current field values of existing records (missing ids are absent from the result)."""
        ...

    def find_by_external_id(self, obj: str, external_ids: Sequence[str]) -> dict[str, str]:
        """external id -> destination id, for the ones that exist."""
        ...

    def list_users(self) -> list[User]: ...

    def count(self, obj: str) -> int: ...

    def list_records(self, obj: str, *, modified_since: str | None = None) -> Iterable[dict[str, Any]]:
        """Every record of an object (with ``id`` and ``$external_id``), for reconciliation."""
        ...

    def upload_attachment(self, obj: str, record_id: str, file_name: str, path: Path,
                          key: str) -> WriteResult:
        """Upload a file to a record. Idempotent by ``key``: a retry after a lost response must
        not attach the file twice (a destination without native deduplication lists the
        record's attachments and matches by name and size). ``created`` False: already there."""
        ...

    def delete_attachments(self, ids: Sequence[str]) -> list[WriteResult]:
        """Remove uploaded files by attachment id (rollback); results keyed by id."""
        ...

    def close(self) -> None: ...


@dataclass
class CallStats:
    """Counters every destination keeps, for reports and benchmarks (API calls per record)."""

    calls: int = 0
    records_written: int = 0
    throttled: int = 0
    by_operation: dict[str, int] = field(default_factory=dict)

    def count_call(self, op: str, n: int = 0) -> None:
        self.calls += 1
        self.records_written += n
        self.by_operation[op] = self.by_operation.get(op, 0) + 1
