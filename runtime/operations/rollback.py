"""`fmap rollback`: undo a run from its journal.

What a run did is read from the operation journal only:

- records it **created** (a confirmed ``create``, or an ``upsert`` the destination says created the
  record; for journals older than state schema 3, an upsert with no earlier op on that record) are
  **deleted**, children before parents: object maps in the reverse order of their first creation
  in the run (the plan's load order), records within a map newest first;
- records it **updated** (plain updates, merges ``step@map``, deferred updates
  ``step:deferred@map``) get their **before-images** back: per field, the value before the run's
  earliest write of that field. Restores run before deletes, so a lookup that pointed at a
  created record is cleared before that record goes.

**Changed since we wrote it.** Every confirmed write journals the field values it sent
(``ops.written``, state schema 3). The expected current state of a record is the fold of every
confirmed, not-undone write fmap made to it (all runs, rollback restores included); the record is
read back with ``dest.get`` and compared field by field with :func:`compare_field` (so a date read
back as an ISO string or a decimal as ``"12.5"`` is not a change). Any difference, and for created
records any value in a field fmap never wrote (other than ``$``-prefixed bookkeeping, ``id``,
read-only and audit fields), is a **conflict**: reported and left alone unless ``force``. We chose
values over a modified timestamp because timestamps move on our own later writes (merges, deferred
updates, a second run), not every CRM returns one through the same field, and the sandbox clock is
not the journal's clock. A record whose journal lacks written values (a writer that journaled only
hashes) cannot be checked: it is counted as ``unverified`` and rolled back.

**Journal and resume.** Rollback runs are ordinary runs (``options.rollback_of``) whose ops are
``delete``/``restore`` with the protocol planned -> sent -> confirmed|failed. Each confirmed rollback
op marks the ops it undid (``undone_by``), so what is left to do is always recomputed from the
journal: a rollback killed midway resumes (sent deletes are checked with ``dest.get``; a record
already gone is confirmed), and a second rollback finds nothing to do (a no-op, no run started).
Deleting a record removes every id-map entry that points at it. When nothing is left
(no conflicts skipped, no failures) the run's status becomes ``rolled_back``.

Files are undone too: those `attach` uploaded to records (journaled as ``<map>@file``, on
records the run created or only updated) and those of maps into attachment objects, through
``delete_attachments``, before the records they hang off. Not undone: records that were deleted
in the destination since.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from runtime.destinations.base import TransientError, WriteItem
from runtime.executor.load import ATTACHMENT_OBJECTS
from runtime.operations.compare import SYSTEM_PREFIX, FieldDiff, compare_record
from runtime.state import Op, OpResult, PlannedOp, RunInfo, StateError, StateStore

__all__ = ["RollbackOptions", "RollbackResult", "Conflict", "RollbackStopped", "rollback_run",
           "rollback_all", "expected_state", "ALREADY_GONE"]

ALREADY_GONE = ("NOT_FOUND", "ENTITY_IS_DELETED")
_WRITES = ("create", "upsert", "update", "restore")


class RollbackStopped(Exception):
    """The rollback stopped (destination unavailable); run it again to resume."""


@dataclass
class RollbackOptions:
    force: bool = False
    batch_size: int | None = None
    schema: Any = None  # SystemSchema: field types for the comparison, read-only fields
    before_call: Callable[[str, int], None] | None = None  # (op kind, call number): test hook


@dataclass
class Conflict:
    action: str  # delete | restore
    target_object: str
    destination_id: str
    map: str
    source_key: str | None
    reason: str
    diffs: list[FieldDiff] = field(default_factory=list)
    forced: bool = False


@dataclass
class _Item:
    action: str
    target_object: str
    destination_id: str
    map: str
    source_object: str | None
    source_key: str | None
    external_id: str | None
    first_op: int
    restore: dict[str, Any] = field(default_factory=dict)
    undo: list[int] = field(default_factory=list)


@dataclass
class RollbackResult:
    run_id: int
    rollback_run_id: int | None = None
    deleted: dict[str, int] = field(default_factory=dict)  # target object -> records
    restored: dict[str, int] = field(default_factory=dict)
    already_gone: int = 0
    conflicts: list[Conflict] = field(default_factory=list)
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # (object, id, error)
    not_restorable: int = 0  # upserts that updated a record without a before-image
    unverified: int = 0
    delete_order: list[str] = field(default_factory=list)  # journal namespaces, children first
    resumed_ops: int = 0
    status: str = ""  # run status afterwards
    noop: bool = False

    @property
    def ok(self) -> bool:
        return not self.failed and not [c for c in self.conflicts if not c.forced]


def expected_state(ops: Iterable[Op]) -> dict[str, Any] | None:
    """The field values fmap's confirmed, not-undone writes leave on a record (None when some
    write did not journal its values)."""
    state: dict[str, Any] = {}
    for op in ops:
        if op.state != "confirmed" or op.op not in _WRITES or op.undone_by is not None:
            continue
        if op.written is None:
            return None
        state.update(op.written)
    return state


def rollback_all(store: StateStore, dest: Any, migration: str | None = None,
                 options: RollbackOptions | None = None) -> list[RollbackResult]:
    """Roll back every (non-rollback) run of ``migration`` (all migrations if None), newest first."""
    runs = [r for r in store.runs(migration) if "rollback_of" not in r.options]
    return [rollback_run(store, dest, r.id, options) for r in reversed(runs)]


def rollback_run(store: StateStore, dest: Any, run_id: int,
                 options: RollbackOptions | None = None) -> RollbackResult:
    opt = options or RollbackOptions()
    run = store.get_run(run_id)
    if "rollback_of" in run.options:
        raise StateError(f"run {run_id} is itself a rollback (of run {run.options['rollback_of']})")
    if run.status == "running":
        raise StateError(f"run {run_id} is still running (or was killed): resume or stop it first")
    return _Rollback(store, dest, run, opt).execute()


class _Rollback:
    def __init__(self, store: StateStore, dest: Any, run: RunInfo, opt: RollbackOptions) -> None:
        self.store, self.dest, self.run, self.opt = store, dest, run, opt
        self.result = RollbackResult(run.id)
        caps = getattr(dest, "capabilities", None)
        self.batch = max(1, min(opt.batch_size or 100, getattr(caps, "batch_size", 100) or 100))
        self.calls = 0
        self.rb_run: int | None = None

    # ------------------------------------------------------------------ driver
    def execute(self) -> RollbackResult:
        self._settle_unresolved()
        items, order = self._items()
        self.result.delete_order = order
        # files uploaded by maps into attachment objects are not records: set apart
        files = [i for i in items if i.action == "delete" and i.target_object in ATTACHMENT_OBJECTS]
        items = [i for i in items if i.action != "delete"
                 or i.target_object not in ATTACHMENT_OBJECTS]
        restores = [i for i in items if i.action == "restore"]
        deletes = [i for i in items if i.action == "delete"]
        current = self._read(items)
        todo_r = self._check(restores, current)
        todo_d = self._check(deletes, current)
        # one rollback run for all of it, started only when there is something to do
        if files or todo_r or todo_d:
            self._start_run()
            try:
                self._delete_files(files)  # first: the files hang off records deleted below
                self._restore(todo_r, current)
                self._delete(todo_d, current, order)
            except TransientError as exc:
                raise self._stopped(exc) from None
        if not items:
            self.result.noop = not files and self.result.resumed_ops == 0
        skipped = [c for c in self.result.conflicts if not c.forced]
        self._finish(done_all=not skipped and not self.result.failed)
        return self.result

    def _stopped(self, exc: TransientError) -> RollbackStopped:
        """The destination kept failing: the rollback run is marked stopped, to be resumed."""
        self.store.finish_run(self.rb_run, "stopped")
        return RollbackStopped(f"rollback of run {self.run.id} stopped: {exc}; run it again to "
                               "resume")

    def _start_run(self) -> None:
        for r in reversed(self.store.runs(self.run.migration)):
            if r.options.get("rollback_of") == self.run.id and r.status in ("running", "stopped",
                                                                              "failed"):
                self.rb_run = self.store.resume_run(r.id).id
                break
        else:
            self.rb_run = self.store.start_run(
                self.run.migration, fmap_path=self.run.fmap_path,
                options={"rollback_of": self.run.id, "force": self.opt.force})
        self.result.rollback_run_id = self.rb_run

    def _finish(self, *, done_all: bool) -> None:
        if self.rb_run is not None:
            self.store.finish_run(self.rb_run, "completed" if not self.result.failed else "failed")
        if done_all and self.run.status != "rolled_back":
            self.store.set_run_status(self.run.id, "rolled_back")
        self.result.status = self.store.get_run(self.run.id).status

    # ------------------------------------------------------------------ what is left to do
    def _rollback_runs(self) -> list[int]:
        return [r.id for r in self.store.runs(self.run.migration)
                if r.options.get("rollback_of") == self.run.id]

    def _settle_unresolved(self) -> None:
        """Ops a killed rollback left planned/sent/unknown: a delete whose record is gone is
        confirmed; everything else is marked failed and recomputed (restores are idempotent)."""
        for rb in self._rollback_runs():
            ops = self.store.unresolved_ops(rb)
            if not ops:
                continue
            self.result.resumed_ops += len(ops)
            self.rb_run = rb
            by_obj: dict[str, list[Op]] = {}
            for op in ops:
                by_obj.setdefault(op.target_object, []).append(op)
            for obj, group in by_obj.items():
                sent_deletes = [o for o in group if o.op == "delete" and o.state != "planned"]
                dest_ids = [o.before_image.get("id") for o in sent_deletes if o.before_image]
                live = self.dest.get(obj, [d for d in dest_ids if d]) if dest_ids else {}
                for o in group:
                    did = (o.before_image or {}).get("id")
                    if o in sent_deletes and did and did not in live:
                        self._planned_to_confirmed(o, did, already_sent=True)
                    else:
                        self.store.fail([(o.id, "abandoned on resume of the rollback; redone")])
            self.store.set_run_status(rb, "stopped")

    def _items(self) -> tuple[list[_Item], list[str]]:
        ops = [o for o in self.store.ops(self.run.id, state="confirmed")
               if o.op in ("create", "upsert", "update") and o.destination_id]
        created: dict[tuple[str, str], _Item] = {}
        updated: dict[tuple[str, str], _Item] = {}
        first_create: dict[str, int] = {}
        for o in ops:
            rec = (o.target_object, o.destination_id)
            is_create = o.op == "create" or (o.op == "upsert" and (
                o.created is True or (o.created is None and not self._earlier_ops(o))))
            if is_create:
                first_create.setdefault(o.map, o.id)
                if o.undone_by is None and rec not in created:
                    created[rec] = _Item("delete", o.target_object, o.destination_id, o.map,
                                         o.source_object, o.source_key, o.external_id, o.id)
        for o in ops:
            rec = (o.target_object, o.destination_id)
            if rec in created or o.undone_by is not None:
                if rec in created:
                    created[rec].undo.append(o.id)
                continue
            if o.target_object in ATTACHMENT_OBJECTS:
                continue  # a file the destination already held (an idempotent re-upload)
            if o.op == "create" or o.op == "upsert" and o.before_image is None:
                if o.op == "upsert":
                    self.result.not_restorable += 1
                continue
            it = updated.setdefault(rec, _Item("restore", o.target_object, o.destination_id,
                                               o.map, o.source_object, o.source_key,
                                               o.external_id, o.id))
            for f, v in (o.before_image or {}).items():
                it.restore.setdefault(f, v)  # the earliest write's before-image wins
            it.undo.append(o.id)
        order = sorted(first_create, key=lambda m: -first_create[m])
        rank = {m: i for i, m in enumerate(order)}
        deletes = sorted(created.values(), key=lambda i: (rank[i.map], -i.first_op))
        return list(updated.values()) + deletes, order

    def _earlier_ops(self, op: Op) -> bool:
        return any(o.id < op.id and o.state == "confirmed" and o.op in _WRITES
                   for o in self.store.ops_for_destination(op.target_object, op.destination_id))

    # ------------------------------------------------------------------ conflicts
    def _read(self, items: list[_Item]) -> dict[tuple[str, str], dict[str, Any]]:
        by_obj: dict[str, list[str]] = {}
        for i in items:
            by_obj.setdefault(i.target_object, []).append(i.destination_id)
        out: dict[tuple[str, str], dict[str, Any]] = {}
        for obj, ids in by_obj.items():
            for k in range(0, len(ids), self.batch):
                for did, rec in self.dest.get(obj, ids[k:k + self.batch]).items():
                    out[(obj, did)] = rec
        return out

    def _object_schema(self, obj: str) -> Any:
        schema = self.opt.schema
        if schema is None:
            try:
                schema = self.dest.schema()
            except Exception:  # noqa: BLE001 - a destination without a schema: compare untyped
                return None
        return next((o for o in getattr(schema, "objects", []) if o.api_name == obj), None)

    def _check(self, items: list[_Item], current: dict) -> list[_Item]:
        todo = []
        for it in items:
            rec = current.get((it.target_object, it.destination_id))
            if rec is None:
                if it.action == "delete":
                    todo.append(it)  # already gone: journaled as a delete without a call
                else:
                    self.result.conflicts.append(Conflict(
                        "restore", it.target_object, it.destination_id, it.map, it.source_key,
                        "the record was deleted in the destination after the migration"))
                continue
            expected = expected_state(self.store.ops_for_destination(it.target_object,
                                                                     it.destination_id))
            if expected is None:
                self.result.unverified += 1
                todo.append(it)
                continue
            oschema = self._object_schema(it.target_object)
            diffs = [d for d in compare_record(expected, rec, oschema,
                                               include_unwritten=it.action == "delete")
                     if not d.ok and not self._ignored(oschema, d.field)]
            if not diffs:
                todo.append(it)
                continue
            conflict = Conflict(it.action, it.target_object, it.destination_id, it.map,
                                it.source_key, f"changed in the destination since fmap wrote it "
                                f"({len(diffs)} field(s))", diffs, forced=self.opt.force)
            self.result.conflicts.append(conflict)
            if self.opt.force:
                todo.append(it)
        return todo

    @staticmethod
    def _ignored(oschema: Any, name: str | None) -> bool:
        if name is None or name == "id" or name.startswith(SYSTEM_PREFIX):
            return True
        if oschema is None:
            return False
        f = next((f for f in oschema.fields if f.api_name == name), None)
        return f is not None and (f.read_only or f.audit)

    # ------------------------------------------------------------------ writes
    def _hook(self, kind: str) -> None:
        self.calls += 1
        if self.opt.before_call is not None:
            self.opt.before_call(kind, self.calls)

    def _plan(self, it: _Item, op: str, payload: Any, before: dict[str, Any]) -> int:
        [op_id] = self.store.plan_ops(self.rb_run, [PlannedOp(
            map=it.map, target_object=it.target_object, op=op, source_object=it.source_object,
            source_key=it.source_key, external_id=it.external_id, payload=payload,
            before_image=before)])
        return op_id

    def _planned_to_confirmed(self, op: Op, dest_id: str, *, already_sent: bool = False) -> None:
        if not already_sent:
            self.store.mark_sent([op.id])
        self.store.confirm([OpResult(op.id, dest_id)])
        self.store.forget_destination(op.target_object, dest_id)
        undo = [o.id for o in self.store.ops_for_destination(op.target_object, dest_id)
                if o.run_id == self.run.id and o.op in ("create", "upsert", "update")
                and o.state == "confirmed" and o.undone_by is None]
        self.store.mark_undone(undo, op.id)

    def _restore(self, items: list[_Item], current: dict) -> None:
        by_obj: dict[str, list[_Item]] = {}
        for it in items:
            by_obj.setdefault(it.target_object, []).append(it)
        for obj, group in by_obj.items():
            for k in range(0, len(group), self.batch):
                chunk = group[k:k + self.batch]
                ids = {}
                for it in chunk:
                    rec = current.get((obj, it.destination_id), {})
                    ids[it.destination_id] = self._plan(
                        it, "restore", it.restore, {f: rec.get(f) for f in it.restore})
                self.store.mark_sent(list(ids.values()))
                self._hook("restore")
                writes = [WriteItem(it.destination_id, None, it.restore,
                                    it.destination_id) for it in chunk]
                try:
                    results = {r.key: r for r in self.dest.update(obj, writes)}
                except TransientError as exc:
                    self.store.mark_unknown(list(ids.values()), str(exc)[:200])
                    raise
                for it in chunk:
                    r = results.get(it.destination_id)
                    op_id = ids[it.destination_id]
                    if r is not None and r.ok:
                        self.store.confirm([OpResult(op_id, it.destination_id)])
                        self.store.mark_undone(it.undo, op_id)
                        self.result.restored[obj] = self.result.restored.get(obj, 0) + 1
                    else:
                        err = f"{r.code}: {r.error}" if r is not None else "no result"
                        self.store.fail([(op_id, err)])
                        self.result.failed.append((obj, it.destination_id, err))

    def _delete_files(self, items: list[_Item]) -> None:
        """Remove files uploaded by maps into attachment objects (Zoho Attachments, Pipedrive
        File...): they are not records, so they go through ``delete_attachments``."""
        for k in range(0, len(items), self.batch):
            chunk = items[k:k + self.batch]
            ops = {it.destination_id: self._plan(it, "delete", None, {"id": it.destination_id})
                   for it in chunk}
            self.store.mark_sent(list(ops.values()))
            self._hook("delete")
            try:
                results = {r.key: r for r in self.dest.delete_attachments(list(ops))}
            except TransientError as exc:
                self.store.mark_unknown(list(ops.values()), str(exc)[:200])
                raise
            for it in chunk:
                r = results.get(it.destination_id)
                obj = it.target_object
                if r is not None and (r.ok or r.code in ALREADY_GONE):
                    self._confirm_delete(obj, it, ops[it.destination_id], counted=r.ok, sent=True)
                else:
                    err = f"{r.code}: {r.error}" if r is not None else "no result"
                    self.store.fail([(ops[it.destination_id], err)])
                    self.result.failed.append((obj, it.destination_id, err))

    def _delete(self, items: list[_Item], current: dict, order: list[str]) -> None:
        groups: list[tuple[str, list[_Item]]] = []
        for it in items:  # already in delete order; group consecutive runs by object
            if groups and groups[-1][0] == it.target_object:
                groups[-1][1].append(it)
            else:
                groups.append((it.target_object, [it]))
        for obj, group in groups:
            for k in range(0, len(group), self.batch):
                chunk = group[k:k + self.batch]
                ops: dict[str, int] = {}
                for it in chunk:
                    rec = current.get((obj, it.destination_id))
                    before = {"id": it.destination_id, **(rec or {})}
                    ops[it.destination_id] = self._plan(it, "delete", None, before)
                gone = [it for it in chunk if (obj, it.destination_id) not in current]
                live = [it for it in chunk if (obj, it.destination_id) in current]
                for it in gone:
                    self._confirm_delete(obj, it, ops[it.destination_id], counted=False)
                    self.result.already_gone += 1
                if not live:
                    continue
                self.store.mark_sent([ops[it.destination_id] for it in live])
                self._hook("delete")
                try:
                    results = {r.key: r for r in self.dest.delete(
                        obj, [it.destination_id for it in live])}
                except TransientError as exc:
                    self.store.mark_unknown([ops[it.destination_id] for it in live],
                                            str(exc)[:200])
                    raise
                for it in live:
                    r = results.get(it.destination_id)
                    if r is not None and (r.ok or r.code in ALREADY_GONE):
                        self._confirm_delete(obj, it, ops[it.destination_id], counted=r.ok,
                                             sent=True)
                    else:
                        err = f"{r.code}: {r.error}" if r is not None else "no result"
                        self.store.fail([(ops[it.destination_id], err)])
                        self.result.failed.append((obj, it.destination_id, err))

    def _confirm_delete(self, obj: str, it: _Item, op_id: int, *, counted: bool,
                        sent: bool = False) -> None:
        if not sent:
            self.store.mark_sent([op_id])
        self.store.confirm([OpResult(op_id, it.destination_id)])
        self.store.forget_destination(obj, it.destination_id)
        self.store.mark_undone(it.undo, op_id)
        if counted:
            self.result.deleted[obj] = self.result.deleted.get(obj, 0) + 1
