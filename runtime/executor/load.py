"""Load staged records into the destination, in plan order, journaled and idempotent.

Per batch: resolve references through the id map and owners through the user list, decide the
operation (create/upsert for new records, update with a before-image for loaded ones, nothing for
unchanged ones: same request hash as the last confirmed write), journal the intent (`planned`),
mark it `sent` (committed before the call), call the destination, then confirm or fail each op with
its record's outcome in one transaction. A call that fails transiently is retried with backoff;
when its outcome is unknown (a timeout, a lost response) the records are looked up by external id
before anything is re-sent, so a retry never creates a duplicate, with or without native upsert.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime.destinations.base import (
    Destination,
    FatalError,
    TransientError,
    WriteItem,
    WriteResult,
)
from runtime.executor.ratelimit import Backoff, TokenBucket
from runtime.executor.stage import Stage, StagedRecord
from runtime.functions.notes import split_note
from runtime.functions.values import is_blank
from runtime.plan import Attachment, Owner, Plan, Ref, Step
from runtime.state import (
    OpResult,
    Outcome,
    PlannedOp,
    QuarantineItem,
    StateStore,
    request_hash,
)
from runtime.state.store import chunked

__all__ = ["LoadOptions", "Loader", "RunStopped", "ATTACHMENT_OBJECTS", "AttachmentOutsideRoot",
           "attachment_file", "FILE_NAMESPACE", "FILE_TARGET", "file_namespace", "is_file_namespace"]

# Target objects whose "records" are files uploaded to a parent record.
ATTACHMENT_OBJECTS = frozenset({"Attachments", "Attachment", "ContentVersion", "Document",
                                "Documents", "File", "Files"})


# The journal namespace of the files `attach` uploads to a step's records (``<step>@file``), and
# the target object their ops carry: an attachment object, so rollback removes them with
# ``delete_attachments`` (whatever the dialect calls its attachments) and never reads them as
# records.
FILE_NAMESPACE = "@file"
FILE_TARGET = "Attachments"


def file_namespace(step_name: str) -> str:
    return f"{step_name}{FILE_NAMESPACE}"


def is_file_namespace(namespace: str) -> bool:
    """Whether a journal namespace holds a step's uploaded files, not its records."""
    return namespace.endswith(FILE_NAMESPACE)


class AttachmentOutsideRoot(ValueError):
    """An attachment path that leads out of the export's files folder. The message never names
    the path: file names in a clinic's export are often patient names."""


def attachment_file(a: Attachment, files_root: Path | None) -> Path | None:
    """The file an attachment's path names, or None when the record has no file (a missing, null
    or blank path). The loader (size checks, uploads) and `fmap profile` read files only through
    here, so they agree on which file a record means.

    A relative path is read from ``files_root`` (the export's files folder). The paths are data
    from the export, so with a root they must stay inside it: ``../``, or an absolute path
    elsewhere, raises :class:`AttachmentOutsideRoot` rather than uploading some other file on this
    machine to the CRM. The check is on the path as written (normalised), not on symlinks: a link
    inside the folder was put there by whoever prepared it. Without a root (a library caller that
    names none) the path is taken as given."""
    if is_blank(a.path):
        return None
    path = Path(str(a.path))
    if files_root is None:
        return path
    root = Path(os.path.abspath(files_root))
    full = Path(os.path.normpath(root / path))  # an absolute path replaces the root here
    if not full.is_relative_to(root):
        raise AttachmentOutsideRoot("attachment path is outside the files folder")
    return full


NO_FILE = "no file path"


def _size(n: int) -> str:
    """A file size for a message: 25 MB, 3.2 MB, 2 KB, 2.9 KB, 900 bytes."""
    for unit, scale in (("MB", 1048576), ("KB", 1024)):
        if n >= scale:
            v = n / scale
            return f"{v:.0f} {unit}" if v == int(v) else f"{v:.1f} {unit}"
    return f"{n} bytes"


class RunStopped(Exception):
    """The run stopped cleanly (retries exhausted, fatal destination error, error budget); all
    state is journaled and `fmap run --resume` continues it."""


@dataclass
class LoadOptions:
    batch_size: int | None = None
    max_retries: int | None = None
    error_budget: float = 0.25  # stop when more than this share of writes failed...
    error_budget_min: int = 50  # ...after at least this many
    files_root: Path | None = None
    sleep: Callable[[float], None] | None = None
    clock: Callable[[], float] | None = None
    seed: int | None = None
    on_progress: Callable[[str, int, int], None] | None = None  # step, done, total


@dataclass
class _Pending:
    rec: StagedRecord
    key: str  # outcome key (source key, or key#n for split parts)
    external_id: str
    record: dict[str, Any]
    op: str  # create | upsert | update
    dest_id: str | None = None
    before: dict[str, Any] | None = None
    attachment: Attachment | None = None
    op_id: int = 0
    record_hash: str = ""
    parent: tuple[str, str] | None = None  # (object, destination id) of the first reference


@dataclass
class LoadStats:
    written: int = 0
    failed: int = 0
    calls: int = 0
    retries: int = 0
    unchanged: int = 0
    unmatched_owners: dict[str, int] = field(default_factory=dict)
    # per step: files `oversize skip` left out on a record map (its records loaded without them)
    files_skipped: dict[str, int] = field(default_factory=dict)


class Loader:
    def __init__(self, plan: Plan, dest: Destination, state: StateStore, stage: Stage,
                 run_id: int, P: dict[str, Any], options: LoadOptions | None = None) -> None:
        import time

        self.plan = plan
        self.dest = dest
        self.state = state
        self.stage = stage
        self.run_id = run_id
        self.P = P
        self.opt = options or LoadOptions()
        caps = dest.capabilities
        cap = caps.bulk_batch_size or caps.batch_size  # a bulk API takes bigger batches
        self.batch_size = min(self.opt.batch_size or cap, cap)
        self.max_retries = self.opt.max_retries if self.opt.max_retries is not None else caps.max_retries
        self.sleep = self.opt.sleep or time.sleep
        rl = caps.rate_limit
        self.bucket = TokenBucket(rl.per_window, rl.window_seconds,
                                  clock=self.opt.clock or time.monotonic, sleep=self.sleep)
        self.backoff = Backoff(seed=self.opt.seed)
        self.stats = LoadStats()
        self.users: dict[str, str] | None = None
        self._schema = None

    # ------------------------------------------------------------------ owners
    def owner_report(self) -> dict[str, int]:
        """Owner emails in the staged records that match no destination user, with counts."""
        users = self._users()
        return {e: n for e, n in self.stage.owner_emails().items() if e not in users}

    def _users(self) -> dict[str, str]:
        if self.users is None:
            self.users = {u.email.strip().lower(): u.id for u in self._call_read(self.dest.list_users)
                          if u.active}
        return self.users

    def _fallback_owner(self) -> str | None:
        owners = self.plan.owners or {}
        fb = owners.get("fallback")
        if fb is None:
            return None
        email = fb(self.P)
        if not isinstance(email, str) or not email.strip():
            return None
        uid = self._users().get(email.strip().lower())
        if uid is None:
            raise FatalError(f"the fallback owner {email!r} is not an active user of the destination")
        return uid

    # ------------------------------------------------------------------ driver
    def run(self, extracted: dict[str, int]) -> None:
        self.stats.unmatched_owners = self.owner_report()
        self._fallback = self._fallback_owner()
        self._recover_unresolved()
        for st in self.plan.steps:
            self.state.set_extracted(self.run_id, st.name, extracted.get(st.name, 0))
            self._load_step(st)
        for st in self.plan.steps:
            if st.deferred_fields:
                self._load_deferred(st)

    # ------------------------------------------------------------------ resume
    def _recover_unresolved(self) -> None:
        """Ops left planned/sent/unknown by a killed run: find out what happened before anything
        is sent again. Sent or unknown creates are looked up by external id: found -> confirmed
        with their outcome; absent -> abandoned so the record is processed afresh. Planned ops were
        never sent and are abandoned."""
        ops = self.state.unresolved_ops(self.run_id)
        if not ops:
            return
        files: list = []
        by_target: dict[str, list] = {}
        for op in ops:
            if is_file_namespace(op.map):
                files.append(op)
            else:
                by_target.setdefault(op.target_object, []).append(op)
        # an upload `attach` made is done again with its record (uploads are idempotent by key):
        # its record's op is unresolved too, as records are confirmed after their files
        if files:
            self.state.fail([(o.id, "abandoned on resume: the file is uploaded again with its "
                                    "record") for o in files])
        for obj, group in by_target.items():
            sent = [o for o in group if o.state in ("sent", "unknown") and o.external_id
                    and o.op in ("create", "upsert")]
            found = self._find(obj, sent) if sent else {}
            confirm, abandon = [], []
            for o in group:
                dest_id = found.get(o.external_id) if o in sent else None
                if dest_id is not None:
                    confirm.append((o, dest_id))
                elif o.op == "update" and o.state in ("sent", "unknown"):
                    abandon.append(o)  # updates are re-sent: idempotent
                else:
                    abandon.append(o)
            for o, dest_id in confirm:
                # a record with files is written, but its file may not be: no outcome yet, so
                # it is processed again and its upload checked (``_upload_missing_files``)
                self.state.confirm([OpResult(o.id, dest_id, True)], outcomes=(
                    [] if self._has_files(o.map) else self._maybe_outcome(o, "created")))
            if abandon:
                self.state.fail([(o.id, "abandoned on resume: outcome unknown or never sent; "
                                        "the record is processed again") for o in abandon])

    def _find(self, obj: str, ops: list) -> dict[str, str]:
        """external id -> destination id for the journaled ``ops`` whose records exist. A
        destination that takes hints (``capabilities.find_hints``) also gets, per external id,
        when the op was first sent and the payload it sent, from the journal: what lets a
        resumed process search a window instead of the whole object."""
        ids = list(dict.fromkeys(o.external_id for o in ops if o.external_id))
        if not getattr(self.dest.capabilities, "find_hints", False):
            return self._call_read(self.dest.find_by_external_id, obj, ids)
        hints: dict[str, dict] = {}
        for o in ops:
            if not o.external_id:
                continue
            # a re-sent op's sent_at is its latest send (requeue clears it and counts an
            # attempt; the first is 1); its first send, which may be the one the destination
            # committed, is no earlier than its planning
            sent_at = o.sent_at if o.attempt <= 1 and o.sent_at else o.planned_at
            h = hints.setdefault(o.external_id, {"sent_at": sent_at, "payload": o.written})
            if sent_at and (h["sent_at"] is None or sent_at < h["sent_at"]):
                h["sent_at"] = sent_at  # one id journaled twice: the earlier send
        return self._call_read(self.dest.find_by_external_id, obj, ids, hints=hints)

    def _maybe_outcome(self, op, detail: str) -> list[Outcome]:
        """The outcome of a recovered op, under its step's name (the journal namespace before
        any ``@``), unless the record already has one."""
        step_name = op.map.split("@", 1)[0]
        if op.source_key is None:
            return []
        if self.state.outcomes_for(self.run_id, step_name, [op.source_key]):
            return []
        return [Outcome(step_name, op.source_key, "loaded", detail, op.source_object)]

    def _has_files(self, namespace: str) -> bool:
        """Whether the step journaling under ``namespace`` uploads files with its records (a
        merge's ``step@map`` namespace names no step: merges upload none)."""
        try:
            return self.plan.step(namespace).attach is not None
        except KeyError:
            return False

    # ------------------------------------------------------------------ steps
    def _target_object(self, st: Step) -> tuple[str, str]:
        """(target object, id-map namespace) for a step."""
        if st.kind == "merge":
            parent = self.plan.step(st.target)
            return parent.target, parent.name
        return st.target, st.name

    def _namespaces(self, st: Step) -> tuple[str, str, str]:
        """(target object, id-map namespace holding the record's destination id, journal
        namespace of this step's writes). Merges and deferred updates write to records another
        map loaded, so their journal namespace is their own (``step@map``): their request hashes
        make re-runs skip unchanged updates, and rollback finds their before-images."""
        obj, namespace = self._target_object(st)
        if st.kind == "merge":
            return obj, namespace, f"{st.name}@{namespace}"
        return obj, namespace, namespace

    def _load_step(self, st: Step) -> None:
        total = self.stage.count(st.name)
        done = 0
        self._produced = 0
        for chunk in chunked(self.stage.records(st.name), self.batch_size):
            keys = [r.source_key for r in chunk]
            have = self.state.outcomes_for(self.run_id, st.name, keys)
            todo = [r for r in chunk if r.source_key not in have]
            self._produced += len(chunk) - len(todo)
            self._load_batch(st, todo)
            done += len(chunk)
            if self.opt.on_progress is not None:
                self.opt.on_progress(st.name, done, total)
        if st.split is not None:
            # a split map's records are its parts: it accounts for every part it produced
            self.state.set_extracted(self.run_id, st.name, self._split_total(st))

    def _split_total(self, st: Step) -> int:
        return self.state.conn.execute(
            "SELECT COUNT(*) FROM outcomes WHERE run_id = ? AND map = ?", (self.run_id, st.name)
        ).fetchone()[0]

    def _record_non_ready(self, st: Step, recs: list[StagedRecord]) -> None:
        q, outs = [], []
        for r in recs:
            if r.status == "quarantined":
                q.append(QuarantineItem(
                    source_object=r.source_object, source_key=r.source_key, map=st.name,
                    reason=r.detail or "quarantined", field=r.field,
                    value=r.value, rule=None, location=r.location,
                    sensitive=True if r.value is not None else False,
                ))
            else:
                outs.append(Outcome(st.name, r.source_key, r.status, r.detail, r.source_object))
        if q:
            self.state.quarantine(self.run_id, q)
        if outs:
            self.state.record_outcomes(self.run_id, outs)

    def _load_batch(self, st: Step, recs: list[StagedRecord]) -> None:
        if not recs:
            return
        obj, lookup_ns, op_ns = self._namespaces(st)
        ready = [r for r in recs if r.status == "ready"]
        self._record_non_ready(st, [r for r in recs if r.status != "ready"])
        if not ready:
            return
        items, skipped, quarantined = self._prepare(st, obj, lookup_ns, ready)
        if skipped:
            self.state.record_outcomes(self.run_id, skipped)
        if quarantined:
            self.state.quarantine(self.run_id, quarantined)
        if st.split is not None and items:  # parts already done before a resume
            done = self.state.outcomes_for(self.run_id, st.name, [p.key for p in items])
            items = [p for p in items if p.key not in done]
        if items:
            self._classify_and_send(st, obj, lookup_ns, op_ns, items)

    # ------------------------------------------------------------------ preparation
    def _prepare(self, st: Step, obj: str, namespace: str, ready: list[StagedRecord],
                 only_fields: tuple[str, ...] | None = None):
        """Resolve references and owners; expand split records; check attachments."""
        refs: dict[str, set[str]] = {}
        for r in ready:
            for v in r.payload.values():
                if isinstance(v, Ref) and v.key is not None:
                    for m in v.maps:
                        refs.setdefault(m, set()).add(v.key)
        resolved = {m: self.state.lookup_many(m, sorted(keys)) for m, keys in refs.items()}
        users = self._users() if any(isinstance(v, Owner) for r in ready
                                     for v in r.payload.values()) else {}
        owners_policy = self.plan.owners or {}
        items: list[_Pending] = []
        skipped: list[Outcome] = []
        quarantined: list[QuarantineItem] = []
        deferred = set(st.deferred_fields)
        for r in ready:
            record: dict[str, Any] = {}
            problem = None
            attachment = None
            parent = None
            for f, v in r.payload.items():
                if only_fields is not None and f not in only_fields:
                    continue
                if only_fields is None and f in deferred:
                    continue
                if isinstance(v, Ref):
                    if v.key is None:
                        record[f] = None
                        continue
                    hit = next((m for m in v.maps if v.key in resolved[m]), None)
                    dest_id = resolved[hit][v.key] if hit is not None else None
                    if hit is not None and parent is None:
                        parent = (self._target_object(self.plan.step(hit))[0], dest_id)
                    if dest_id is None:
                        problem = ("skipped", f"{' or '.join(v.maps)} record {v.key} was not "
                                   f"loaded (referenced by {f})")
                        break
                    record[f] = dest_id
                elif isinstance(v, Owner):
                    email = v.email.strip().lower() if isinstance(v.email, str) else ""
                    uid = users.get(email) if email else None
                    if uid is None:
                        if owners_policy.get("reject"):
                            problem = ("quarantined", f"owner email has no destination user ({f})")
                            break
                        uid = self._fallback
                    if uid is not None:
                        record[f] = uid
                elif isinstance(v, Attachment):
                    attachment = v
                else:
                    record[f] = v
            if problem is not None:
                status, why = problem
                if status == "skipped":
                    skipped.append(Outcome(st.name, r.source_key, "skipped", why, r.source_object))
                else:
                    quarantined.append(QuarantineItem(r.source_object, r.source_key, st.name, why))
                continue
            if attachment is not None and st.attach is not None:
                size_problem = self._attachment_problem(st, attachment)
                if size_problem is not None and obj not in ATTACHMENT_OBJECTS and (
                        size_problem[0] == "skipped"):
                    # on a record map the file is the part skipped, not the record: a patient
                    # with no file (or one over the limit under `oversize skip`) is loaded
                    # without it; only the skipped files are counted (LoadStats.files_skipped)
                    if size_problem[1] != NO_FILE:
                        skipped_files = self.stats.files_skipped
                        skipped_files[st.name] = skipped_files.get(st.name, 0) + 1
                    attachment, size_problem = None, None
                if size_problem is not None:
                    status, why = size_problem
                    if status == "quarantined":
                        quarantined.append(QuarantineItem(r.source_object, r.source_key,
                                                          st.name, why))
                    else:
                        skipped.append(Outcome(st.name, r.source_key, status, why,
                                               r.source_object))
                    continue
            ext = f"{namespace}:{r.source_key}" if st.kind == "map" else r.source_key
            if st.split is not None and isinstance(record.get(st.split.field), str):
                parts = split_note(record[st.split.field], st.split.max, st.split.prefix)
                if len(parts) > 1:
                    for n, part in enumerate(parts, 1):
                        rec_n = dict(record)
                        rec_n[st.split.field] = part
                        items.append(_Pending(r, f"{r.source_key}#{n}", f"{ext}#{n}", rec_n,
                                              "create"))
                    continue
            items.append(_Pending(r, r.source_key, ext, record, "create", attachment=attachment,
                                  parent=parent))
        return items, skipped, quarantined

    def _attachment_problem(self, st: Step, a: Attachment) -> tuple[str, str] | None:
        try:
            path = attachment_file(a, self.opt.files_root)
        except AttachmentOutsideRoot as exc:
            return ("quarantined", str(exc))
        if path is None:
            return ("skipped", NO_FILE)
        if not path.is_file():
            return ("quarantined", "attachment file not found")
        limit = st.attach.limit_bytes
        dest_limit = self.dest.capabilities.attachment_limit_bytes
        if dest_limit is not None:
            limit = min(limit, dest_limit) if limit is not None else dest_limit
        size = path.stat().st_size
        if limit is not None and size > limit:
            policy = st.attach.oversize
            why = f"attachment is {_size(size)}, over the {_size(limit)} limit"
            return ({"skip": "skipped", "fail": "failed"}.get(policy, "quarantined"), why)
        return None

    # ------------------------------------------------------------------ classify + send
    def _rows_for_keys(self, sql: str, params: tuple, keys: list[str]):
        """Rows of ``sql`` (ending in ``source_key IN ({marks})``) for ``keys``, in chunks under
        SQLite's variable limit."""
        conn: sqlite3.Connection = self.state.conn
        for chunk in chunked(keys):
            yield from conn.execute(sql.format(marks=",".join("?" * len(chunk))),
                                    (*params, *chunk))

    def _last_hashes(self, namespace: str, keys: list[str]) -> dict[str, str]:
        """The request hash of each key's last confirmed write that no rollback undid: a record
        whose payload hashes the same is unchanged and is not sent again."""
        return dict(self._rows_for_keys(
            "SELECT source_key, request_hash FROM ops WHERE map = ? AND state = 'confirmed' "
            "AND op IN ('create','upsert','update') AND undone_by IS NULL "
            "AND source_key IN ({marks}) ORDER BY id", (namespace,), keys))

    def _classify_and_send(self, st: Step, obj: str, lookup_ns: str, op_ns: str,
                           items: list[_Pending], force_update: bool = False) -> None:
        if obj in ATTACHMENT_OBJECTS and st.kind == "map" and not force_update:
            self._send_files(st, obj, op_ns, items)
            return
        keys = [p.key for p in items]
        existing = self.state.lookup_many(lookup_ns, keys)
        hashes = self._last_hashes(op_ns, keys) if existing else {}
        unchanged: list[Outcome] = []
        with_files: list[tuple[_Pending, str]] = []  # unchanged records of a map with files
        to_send: list[_Pending] = []
        for p in items:
            dest_id = existing.get(p.key)
            p.record_hash = request_hash(p.record)
            if (st.kind == "merge" or force_update) and dest_id is None:
                # merges and deferred updates only update records another map loaded
                unchanged.append(Outcome(st.name, p.key, "skipped",
                                         f"{st.target} record {p.key} was not loaded",
                                         p.rec.source_object))
                continue
            if dest_id is not None:
                if hashes.get(p.key) == p.record_hash:
                    if st.attach is not None:  # a file to check, or a resumed write
                        with_files.append((p, dest_id))
                        continue
                    unchanged.append(Outcome(st.name, p.key, "loaded", "unchanged",
                                             p.rec.source_object))
                    continue
                p.op, p.dest_id = "update", dest_id
            else:
                p.op = "upsert" if self.dest.capabilities.native_upsert else "create"
            to_send.append(p)
        if with_files:
            unchanged.extend(self._upload_missing_files(st, obj, op_ns, with_files))
        if unchanged:
            self.state.record_outcomes(self.run_id, unchanged)
            self.stats.unchanged += sum(1 for o in unchanged
                                        if o.outcome == "loaded" and o.detail == "unchanged")
            files_failed = sum(1 for o in unchanged if o.outcome == "failed")
            self.stats.failed += files_failed
            if files_failed:
                self._check_budget()
        updates = [p for p in to_send if p.op == "update"]
        if updates:
            before = self._call_read(self.dest.get, obj, [p.dest_id for p in updates])
            earlier = self._earlier_before_images(op_ns, [p.key for p in updates])
            for p in updates:
                current = before.get(p.dest_id, {})
                first = earlier.get(p.key)
                if first is not None:  # re-sent after a crash: the store may hold our update
                    p.before = {f: first.get(f, current.get(f)) for f in p.record}
                else:
                    p.before = {f: current.get(f) for f in p.record}
        for op in ("create", "upsert", "update"):
            group = [p for p in to_send if p.op == op]
            # split records expand into parts: a batch of staged records can exceed batch_size
            for i in range(0, len(group), self.batch_size):
                self._send(st, obj, op_ns, op, group[i:i + self.batch_size])

    def _earlier_before_images(self, namespace: str, keys: list[str]) -> dict[str, dict]:
        """Before-images of this run's unconfirmed updates (abandoned by a resume: they may have
        been committed by the destination before the process died). A re-sent update keeps the
        first one, so rollback restores the record as it was before this run touched it."""
        out: dict[str, dict] = {}
        for k, b in self._rows_for_keys(
            "SELECT source_key, before_image FROM ops WHERE run_id = ? AND map = ? "
            "AND op = 'update' AND state != 'confirmed' AND before_image IS NOT NULL "
            "AND source_key IN ({marks}) ORDER BY id", (self.run_id, namespace), keys,
        ):
            out.setdefault(k, json.loads(b))
        return out

    def _send(self, st: Step, obj: str, namespace: str, op: str, items: list[_Pending]) -> None:
        # the written values go into the journal: rollback compares them with the destination
        # to tell our writes from later edits, reconciliation spot-checks them
        planned = [PlannedOp(map=namespace, target_object=obj, op=op,
                             source_object=p.rec.source_object, source_key=p.key,
                             external_id=p.external_id, payload=p.record,
                             request_hash=p.record_hash, before_image=p.before) for p in items]
        ids = self.state.plan_ops(self.run_id, planned)
        for p, i in zip(items, ids, strict=True):
            p.op_id = i
        pending = {p.external_id: p for p in items}
        attempt = 0
        while pending:
            batch = list(pending.values())
            self.state.mark_sent([p.op_id for p in batch])
            try:
                results = self._write(obj, op, batch)
            except TransientError as exc:
                attempt += 1
                self.stats.retries += 1
                self.state.mark_unknown([p.op_id for p in batch], str(exc)[:200])
                if attempt > self.max_retries:
                    raise RunStopped(f"{st.name}: {exc} (gave up after {self.max_retries} retries; "
                                     "resume with --resume)") from None
                self.sleep(self.backoff.delay(attempt, exc.retry_after))
                if exc.maybe_committed and op in ("create", "upsert"):
                    self._settle_unknown(st, obj, batch, pending)
                if pending:
                    self.state.requeue([p.op_id for p in pending.values()])
                continue
            retry = self._apply_results(st, obj, op, batch, results, attempt)
            pending = {p.external_id: p for p in retry}
            if pending:
                attempt += 1
                self.stats.retries += 1
                self.state.requeue([p.op_id for p in pending.values()])
                self.sleep(self.backoff.delay(attempt))

    def _settle_unknown(self, st: Step, obj: str, batch: list[_Pending],
                        pending: dict[str, _Pending]) -> None:
        """After a call whose outcome is unknown: records that exist were written; confirm them."""
        found = self._find(obj, self.state.ops_by_ids(p.op_id for p in batch))
        confirmed = [p for p in batch if p.external_id in found]
        if not confirmed:
            return
        files_failed = self._confirm_written(st, obj, [(p, found[p.external_id], True)
                                                       for p in confirmed])
        for p in confirmed:
            pending.pop(p.external_id, None)
        if files_failed:
            self._check_budget()

    def _confirm_written(self, st: Step, obj: str,
                         written: list[tuple[_Pending, str | None, bool]]) -> int:
        """Confirm records the destination holds, as (pending, destination id, created), whether
        it answered for them or they were found after a lost response: each gets its outcome
        after its file's upload, and the stats the error budget reads count them the same way on
        both paths. Returns how many ended failed (their file was rejected)."""
        outcomes = [self._with_file(st, obj, dest_id, p, Outcome(
            st.name, p.key, "loaded", "created" if created else "updated", p.rec.source_object))
            for p, dest_id, created in written]
        self.state.confirm([OpResult(p.op_id, dest_id, created) for p, dest_id, created in written],
                           outcomes=outcomes)
        files_failed = sum(1 for o in outcomes if o.outcome == "failed")
        self.stats.written += len(written)
        self.stats.failed += files_failed
        return files_failed

    def _write(self, obj: str, op: str, batch: list[_Pending]) -> list[WriteResult]:
        # updates keep the record's external id: a merge or deferred update writes to a record
        # another map loaded, and must not replace the id it is found by after a crash
        items = [WriteItem(p.external_id, p.external_id if op != "update" else None,
                           p.record, p.dest_id) for p in batch]
        rl = self.dest.capabilities.rate_limit
        self.bucket.acquire(rl.write_cost_per_call + rl.write_cost_per_record * len(items))
        self.stats.calls += 1
        if op == "create":
            return self.dest.create(obj, items)
        if op == "upsert":
            return self.dest.upsert(obj, items)
        return self.dest.update(obj, items)

    def _apply_results(self, st: Step, obj: str, op: str, batch: list[_Pending],
                       results: list[WriteResult], attempt: int) -> list[_Pending]:
        by_key = {r.key: r for r in results}
        written, fails, f_outs, retry, unknown = [], [], [], [], []
        for p in batch:
            r = by_key.get(p.external_id)
            if r is None:
                unknown.append(p)
            elif r.ok:
                created = op == "create" or (op == "upsert" and r.created is not False)
                written.append((p, r.dest_id, created))
            elif r.retryable and attempt < self.max_retries:
                retry.append(p)
            else:
                err = f"{r.code or 'ERROR'}: {r.error or 'rejected'}"
                if r.field:
                    err += f" ({r.field})"
                fails.append((p.op_id, err))
                f_outs.append(Outcome(st.name, p.key, "failed", err, p.rec.source_object))
        files_failed = self._confirm_written(st, obj, written) if written else 0
        if fails:
            self.state.fail(fails, outcomes=f_outs)
            self.stats.failed += len(fails)
        if unknown:  # the destination did not answer for these keys: treat as unknown outcome
            self.state.mark_unknown([p.op_id for p in unknown], "no result for this record")
            retry.extend(unknown)
        if fails or files_failed:  # after journaling all of the batch
            self._check_budget()
        return retry

    def _with_file(self, st: Step, obj: str, dest_id: str | None, p: _Pending,
                   outcome: Outcome) -> Outcome:
        """``outcome`` of a record just written, uploading its file first if it has one: a record
        with a file is only "loaded" once its file is there too."""
        if p.attachment is None:
            return outcome
        up = self._upload(st, obj, dest_id, p)
        if up.ok:
            return outcome
        return Outcome(st.name, p.key, "failed", "record written but its file was rejected: "
                       f"{up.code}: {up.error}", p.rec.source_object)

    def _upload_missing_files(self, st: Step, obj: str, op_ns: str,
                              items: list[tuple[_Pending, str]]) -> list[Outcome]:
        """Outcomes of unchanged records of a map with files: a record's file is uploaded when
        no upload of it is confirmed (a run killed between a record's write and its file's
        upload; a file the destination refused last time), so no record ends loaded without its
        file. A record the run being resumed wrote (a resume leaves every record of such a map
        without an outcome, file or not) keeps its outcome ("created"), known from the journal:
        a resume killed after it settled the record knows it only from there."""
        keys = [p.key for p, _ in items]
        done = self.state.lookup_many(file_namespace(st.name), keys)
        written = self._written_by_run(op_ns, keys)
        out = []
        for p, dest_id in items:
            detail = "unchanged"
            if p.key in written:
                detail = "created" if written[p.key] else "updated"
            outcome = Outcome(st.name, p.key, "loaded", detail, p.rec.source_object)
            out.append(outcome if p.attachment is None or p.key in done
                       else self._with_file(st, obj, dest_id, p, outcome))
        return out

    def _written_by_run(self, namespace: str, keys: list[str]) -> dict[str, bool]:
        """Keys this run confirmed a write of, and whether the write created the record."""
        return {k: bool(c) for k, c in self._rows_for_keys(
            "SELECT source_key, created FROM ops WHERE run_id = ? AND map = ? "
            "AND state = 'confirmed' AND op IN ('create','upsert','update') "
            "AND source_key IN ({marks})", (self.run_id, namespace), keys)}

    def _upload(self, st: Step, obj: str, record_id: str | None, p: _Pending) -> WriteResult:
        """Upload a record's file, journaled under ``<step>@file`` before and after the call:
        rollback deletes what it uploaded, and a resumed run knows which uploads are done."""
        if record_id is None:  # refused before any call: nothing to journal
            return self._send_file(st, obj, record_id, p)
        (op_id,) = self.state.plan_ops(self.run_id, [PlannedOp(
            map=file_namespace(st.name), target_object=FILE_TARGET, op="upsert",
            source_object=p.rec.source_object, source_key=p.key, external_id=p.external_id)])
        self.state.mark_sent([op_id])
        r = self._send_file(st, obj, record_id, p)
        if r.ok:
            # "already there" does not say who put it there: this run, when an answer was lost
            # (a retry here, or a resume after a kill), or an earlier run; unknown, so rollback
            # decides from the journal (an earlier run's confirmed upload of the same file)
            self.state.confirm([OpResult(op_id, r.dest_id, r.created or None)])
        else:
            self.state.fail([(op_id, f"{r.code or 'ERROR'}: {r.error or 'rejected'}")])
        return r

    def _send_file(self, st: Step, obj: str, record_id: str | None, p: _Pending) -> WriteResult:
        """Upload a pending record's file to ``obj``/``record_id``, retrying transient errors
        (uploads are idempotent by key, so a retry after a lost response attaches nothing twice)
        and, as record writes do, a refusal the destination says is retryable (a per-item "try
        again"): a file must not go missing over a momentary refusal."""
        if record_id is None:
            return WriteResult(p.external_id, False, code="NO_PARENT",
                               error="the record the file belongs to was not loaded")
        try:
            path = attachment_file(p.attachment, self.opt.files_root)
        except AttachmentOutsideRoot as exc:
            return WriteResult(p.external_id, False, code="OUTSIDE_FILES", error=str(exc))
        if path is None:
            return WriteResult(p.external_id, False, code="NO_FILE", error=NO_FILE)
        name = str(p.attachment.name) if p.attachment.name not in (None, "") else path.name
        attempt = 0
        while True:
            try:
                self.bucket.acquire(self.dest.capabilities.rate_limit.write_cost_per_call)
                self.stats.calls += 1
                r = self.dest.upload_attachment(obj, record_id, name, path, p.external_id)
            except TransientError as exc:
                attempt += 1
                self.stats.retries += 1
                if attempt > self.max_retries:
                    raise RunStopped(f"{st.name}: file upload kept failing ({exc})") from None
                self.sleep(self.backoff.delay(attempt, exc.retry_after))
                continue
            if r.ok or not r.retryable or attempt >= self.max_retries:
                return r
            attempt += 1
            self.stats.retries += 1
            self.sleep(self.backoff.delay(attempt, None))

    def _send_files(self, st: Step, obj: str, op_ns: str, items: list[_Pending]) -> None:
        """A map into an attachment object (Zoho Attachments, Pipedrive File, Freshsales
        Document...): each record is a file uploaded to the record its first reference points
        to. Journaled like any write; already uploaded files are not sent again."""
        existing = self.state.lookup_many(op_ns, [p.key for p in items])
        done = [Outcome(st.name, p.key, "loaded", "unchanged", p.rec.source_object)
                for p in items if p.key in existing]
        if done:
            self.state.record_outcomes(self.run_id, done)
        todo = [p for p in items if p.key not in existing]
        if not todo:
            return
        for p in todo:
            p.record_hash = request_hash(p.record)
        ids = self.state.plan_ops(self.run_id, [
            PlannedOp(map=op_ns, target_object=obj, op="create",
                      source_object=p.rec.source_object, source_key=p.key,
                      external_id=p.external_id, request_hash=p.record_hash) for p in todo])
        for p, i in zip(todo, ids, strict=True):
            p.op_id = i
            self.state.mark_sent([i])
            if p.attachment is None:
                r = WriteResult(p.external_id, False, code="NO_FILE", error="no file to upload")
            else:
                parent_obj, parent_id = p.parent if p.parent else (obj, None)
                r = self._send_file(st, parent_obj, parent_id, p)  # journaled above
            if r.ok:
                self.state.confirm([OpResult(i, r.dest_id, True)], outcomes=[
                    Outcome(st.name, p.key, "loaded", "created", p.rec.source_object)])
                self.stats.written += 1
            else:
                err = f"{r.code or 'ERROR'}: {r.error or 'rejected'}"
                self.state.fail([(i, err)], outcomes=[
                    Outcome(st.name, p.key, "failed", err, p.rec.source_object)])
                self.stats.failed += 1
                self._check_budget()

    def _check_budget(self) -> None:
        total = self.stats.written + self.stats.failed
        if total >= self.opt.error_budget_min and self.stats.failed / total > self.opt.error_budget:
            raise RunStopped(f"error budget exceeded: {self.stats.failed} of {total} writes failed")

    def _call_read(self, fn, *args, **kwargs):
        attempt = 0
        while True:
            try:
                self.bucket.acquire(self.dest.capabilities.rate_limit.read_cost_per_call)
                self.stats.calls += 1
                return fn(*args, **kwargs)
            except TransientError as exc:
                attempt += 1
                if attempt > self.max_retries:
                    raise RunStopped(f"{getattr(fn, '__name__', 'read')}: {exc}") from None
                self.sleep(self.backoff.delay(attempt, exc.retry_after))

    # ------------------------------------------------------------------ deferred updates
    def _load_deferred(self, st: Step) -> None:
        """Fill the lookups left out to break a dependency cycle, now that every map loaded.
        Accounted under ``<map>:deferred``: one outcome per record the map loaded."""
        obj, namespace, _ = self._namespaces(st)
        name = f"{st.name}:deferred"
        dstep = Step(name=name, kind="map", source=st.source, path=st.path, target=st.target,
                     transform=st.transform, key=st.key, line=st.line)
        n = 0
        for chunk in chunked(self.stage.records(st.name, status="ready"), self.batch_size):
            keys = [r.source_key for r in chunk]
            loaded = self.state.lookup_many(namespace, keys)
            chunk = [r for r in chunk if r.source_key in loaded]
            n += len(chunk)
            have = self.state.outcomes_for(self.run_id, name, [r.source_key for r in chunk])
            todo = [r for r in chunk if r.source_key not in have]
            if not todo:
                continue
            items, skipped, quarantined = self._prepare(dstep, obj, namespace, todo,
                                                        only_fields=st.deferred_fields)
            if skipped:
                self.state.record_outcomes(self.run_id, skipped)
            if quarantined:
                self.state.quarantine(self.run_id, quarantined)
            if items:
                self._classify_and_send(dstep, obj, namespace, f"{name}@{namespace}", items,
                                        force_update=True)
        self.state.set_extracted(self.run_id, name, n)
