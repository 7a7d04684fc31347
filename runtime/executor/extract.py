"""Extract + transform: read each source object once and stage every step's outcome for it.

Per root record: problem rows (malformed in the source) are quarantined in every map over the
object; routing groups send the record to the maps whose `where` holds (or to the `otherwise`
map) and record "skipped (routed to ...)" in the others, so every map accounts for every record it
saw; skip rules record their reason; transform errors become quarantine (conversion errors,
`_ -> quarantine` value maps) or failures (`_ -> error`), with the field and `.fmap` line taken from
the generated module's line table. Nested-array maps iterate the arrays with the ancestors as
``parents``; merges stage each child under its group key and are computed after the whole source
has been read.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any

from runtime.executor.collector import BATCH, BatchCollector
from runtime.executor.stage import Stage
from runtime.functions.errors import ConversionError
from runtime.plan import Owner, Plan, QuarantineRecord, Ref, Step, UnmappedValue, locate

__all__ = ["stage_all", "TransformOutcome", "run_transform"]


class TransformOutcome:
    __slots__ = ("status", "payload", "detail", "field", "location", "value")

    def __init__(self, status: str, payload: Any = None, detail: str | None = None,
                 field: str | None = None, location: str | None = None, value: Any = None):
        self.status = status
        self.payload = payload
        self.detail = detail
        self.field = field
        self.location = location
        self.value = value


def _where(module: ModuleType, exc: BaseException) -> tuple[str | None, str | None, str | None]:
    """(field, rule, "file.fmap:line") for an exception raised in generated code."""
    frames = locate(exc, module)
    if not frames:
        return None, None, None
    (first_line, first_rule), (last_line, last_rule) = frames[0], frames[-1]
    path = getattr(module, "FMAP_PATH", "<fmap>")
    field = first_rule if "." in first_rule and " " not in first_rule else None
    return field, last_rule, f"{path}:{last_line if last_rule != first_rule else first_line}"


def run_transform(module: ModuleType, fn: Callable[..., Any], *args: Any) -> TransformOutcome:
    try:
        return TransformOutcome("ready", fn(*args))
    except ConversionError as exc:
        field, rule, loc = _where(module, exc)
        return TransformOutcome("quarantined", detail=f"{rule or exc.function}: {exc.reason}",
                                field=field, location=loc, value=exc.value)
    except UnmappedValue as exc:
        field, rule, loc = _where(module, exc)
        status = "quarantined" if exc.quarantine else "failed"
        return TransformOutcome(status, detail=str(exc), field=field, location=loc,
                                value=exc.value)
    except QuarantineRecord as exc:
        field, rule, loc = _where(module, exc)
        return TransformOutcome("quarantined", detail=exc.reason, field=field, location=loc)
    except Exception as exc:  # a bug in a function or the generated code: never a traceback
        field, rule, loc = _where(module, exc)
        return TransformOutcome("failed", detail=f"{type(exc).__name__} in {rule or 'transform'}",
                                field=field, location=loc)


def _collect_owners(stage: Stage, payload: dict[str, Any]) -> None:
    for v in payload.values():
        if isinstance(v, Owner) and isinstance(v.email, str) and v.email.strip():
            stage.add_owner(v.email.strip().lower())


def _elements(data: Any, path: tuple[str, ...], parents: tuple, parent_key: str
              ) -> Iterable[tuple[Any, tuple, str]]:
    """(element, parents, fallback key) for every element of a nested array path."""
    if not path:
        yield data, parents, parent_key
        return
    arr = data.get(path[0]) if isinstance(data, dict) else None
    if not isinstance(arr, list):
        return
    for i, elem in enumerate(arr):
        yield from _elements(elem, path[1:], (*parents, data), f"{parent_key}/{path[0]}[{i}]")


def _key_of(module, step: Step, rec: Any, parents: tuple, P: dict, fallback: str
            ) -> tuple[str | None, TransformOutcome | None]:
    if step.key is None:
        return fallback, None
    out = run_transform(module, step.key, rec, parents, P)
    if out.status != "ready":
        return None, out
    return out.payload, None


def stage_all(module: ModuleType, plan: Plan, source, stage: Stage, P: dict[str, Any],
              progress: Callable[[str, int], None] | None = None,
              watermarks: dict[str, Any] | None = None,
              include: Callable[[str, Any], bool] | None = None,
              required: dict[str, tuple[str, ...]] | None = None) -> dict[str, int]:
    """Stage every step. Returns per-step extracted counts (records each step considered).

    ``required`` (preflight): per map, the target's required fields; a record that assigns one
    of them an empty value (null, "", [], a reference with no key) is quarantined with the field's
    name and `.fmap` line instead of being sent to fail at the destination.

    ``watermarks`` (delta runs): per source object, a ``Watermark`` whose ``admits`` decides which
    records are new or changed; the others are not read into the run at all. ``include`` (sample
    runs): a predicate on (source object, record) choosing the records to stage."""
    extracted: dict[str, int] = defaultdict(int)
    by_source: dict[str, list[Step]] = defaultdict(list)
    for st in plan.steps:
        by_source[st.source].append(st)
    available = set(source.objects())
    # automatic collection paused, explicit collections between batches (collector.py)
    with BatchCollector() as collector:
        for obj in sorted(by_source):
            steps = by_source[obj]
            if obj not in available:
                continue
            groups: dict[str, list[Step]] = defaultdict(list)
            for st in steps:
                if st.kind == "map" and st.route_group is not None:
                    groups[st.route_group].append(st)
            n = 0
            wm = (watermarks or {}).get(obj)
            parse = source_instant_parser(source, obj)
            wm_at = parse(wm.modified_at) if wm is not None else None
            unreadable = 0
            for srec in source.records(obj):
                ts = srec.modified_at
                instant = parse(ts) if ts is not None else None
                if ts is not None and instant is None:
                    unreadable += 1  # always read, never moves the watermark (reported)
                if wm is not None and not wm.admits_instant(instant, srec.key, wm_at):
                    continue
                if include is not None and not include(obj, srec):
                    continue
                n += 1
                stage.add_root(obj, srec.key, ts, instant)
                _stage_record(module, srec, steps, groups, stage, P, extracted, required)
                if n % BATCH == 0:
                    collector.batch_done()
                if n % 1000 == 0:
                    if n % 10_000 == 0:
                        # a stage that did not finish is redone from scratch, so committing as it
                        # goes is safe; one transaction for the whole source kept the WAL from being
                        # checkpointed and grew it (and its index) to the size of the stage
                        stage.commit()
                    if progress is not None:
                        progress(obj, n)
            if progress is not None:
                progress(obj, n)
            if unreadable:
                stage.note_unreadable_modified(obj, unreadable)
    for st in plan.steps:
        if st.kind == "merge":
            extracted[st.name] = _stage_merge(module, st, stage, P)
    stage.commit()
    return dict(extracted)


def source_instant_parser(source, obj: str):
    """The object's modified-at parser (its declared format and zone); ISO-8601 for a source
    that cannot say."""
    from runtime.sources.base import SourceError, instant_parser

    config = getattr(source, "config", None)
    if config is None:
        return instant_parser()
    try:
        return config(obj).instant_parser()
    except (AttributeError, SourceError):  # an object it does not hold; an older connector
        return instant_parser()


def _route_decision(module, group: list[Step], data, parents, P) -> tuple[set[str], dict[str, str]]:
    """Which maps of a routing group take the record, and why the others skip it."""
    taken: set[str] = set()
    errors: dict[str, str] = {}
    for st in group:
        if st.route is None:
            continue
        out = run_transform(module, st.route, data, parents, P)
        if out.status != "ready":
            errors[st.name] = out.detail or "routing condition failed"
        elif out.payload:
            taken.add(st.name)
    if not taken and not errors:
        taken = {st.name for st in group if st.otherwise}
    return taken, errors


def _empty(v: Any) -> bool:
    return v is None or (isinstance(v, (str, list, tuple)) and len(v) == 0) or (
        isinstance(v, Ref) and v.key is None)


def _required_problem(module, st: Step, payload: Any, need: tuple[str, ...]
                      ) -> TransformOutcome | None:
    if not isinstance(payload, dict):
        return None
    for f in need:
        if f in payload and _empty(payload[f]):
            return TransformOutcome(
                "quarantined", detail=f"required field {st.target}.{f} is empty",
                field=f"{st.target}.{f}",
                location=f"{getattr(module, 'FMAP_PATH', '<fmap>')}:"
                         f"{st.field_lines.get(f, st.line)}")
    return None


def _stage_record(module, srec, steps: list[Step], groups: dict[str, list[Step]], stage: Stage,
                  P: dict, extracted: dict[str, int],
                  required: dict[str, tuple[str, ...]] | None = None) -> None:
    data = srec.data
    decisions: dict[str, tuple[set[str], dict[str, str]]] = {}
    for st in steps:
        if st.kind == "merge":
            for elem, parents, fb in _elements(data, st.path, (), srec.key):
                if srec.problem:
                    continue  # a malformed row never joins a group; its maps quarantine it
                gkey, err = _key_of(module, st, elem, parents, P, fb)
                if gkey is not None:
                    stage.add_merge_child(st.name, gkey, elem)
            continue
        for elem, parents, fallback in _elements(data, st.path, (), srec.key):
            extracted[st.name] += 1
            key, kerr = _key_of(module, st, elem, parents, P, fallback)
            if srec.problem:
                k = key or fallback
                if not stage.add(st.name, k, "quarantined", detail=srec.problem,
                                 location=srec.position, source_object=srec.object,
                                 root_key=srec.key):
                    # a duplicate source key (its first occurrence holds the key): quarantined
                    # under a distinct key, never dropped
                    stage.add(st.name, f"{k}#dup{extracted[st.name]}", "quarantined",
                              detail=srec.problem, location=srec.position,
                              source_object=srec.object, root_key=srec.key)
                continue
            if kerr is not None:
                stage.add(st.name, fallback, kerr.status, detail=kerr.detail, field=kerr.field,
                          location=kerr.location, source_object=srec.object, root_key=srec.key)
                continue
            if st.route_group is not None and not st.path:
                if st.route_group not in decisions:
                    decisions[st.route_group] = _route_decision(
                        module, groups[st.route_group], elem, parents, P)
                taken, errors = decisions[st.route_group]
                if st.name in errors:
                    stage.add(st.name, key, "quarantined", detail=errors[st.name],
                              source_object=srec.object, root_key=srec.key)
                    continue
                if st.name not in taken:
                    others = sorted(taken)
                    why = (f"routed to {', '.join(others)}" if others
                           else "matched no routing branch")
                    stage.add(st.name, key, "skipped", detail=why, source_object=srec.object,
                              root_key=srec.key)
                    continue
            elif st.route is not None:
                r = run_transform(module, st.route, elem, parents, P)
                if r.status != "ready" or not r.payload:
                    stage.add(st.name, key, "skipped", detail=r.detail or "where condition false",
                              source_object=srec.object, root_key=srec.key)
                    continue
            skipped = False
            for rule in st.skips:
                r = run_transform(module, rule.predicate, elem, parents, P)
                if r.status == "ready" and r.payload:
                    stage.add(st.name, key, "skipped", detail=rule.reason,
                              location=f"{getattr(module, 'FMAP_PATH', '')}:{rule.line}",
                              source_object=srec.object, root_key=srec.key)
                    skipped = True
                    break
            if skipped:
                continue
            out = run_transform(module, st.transform, elem, parents, P)
            if out.status == "ready" and required and st.name in required:
                out = _required_problem(module, st, out.payload, required[st.name]) or out
            if out.status == "ready":
                _collect_owners(stage, out.payload)
            if not stage.add(st.name, key, out.status, payload=out.payload, detail=out.detail,
                             field=out.field, location=out.location, value=out.value,
                             source_object=srec.object, root_key=srec.key):
                # the same key twice: the second record is quarantined, never silently merged
                stage.add(st.name, f"{key}#dup{extracted[st.name]}", "quarantined",
                          detail="duplicate source key", source_object=srec.object,
                          root_key=srec.key)


def _stage_merge(module, st: Step, stage: Stage, P: dict) -> int:
    n = 0
    for gkey, children in stage.merge_groups(st.name):
        n += 1
        out = run_transform(module, st.transform, children, P)
        if out.status == "ready":
            _collect_owners(stage, out.payload)
        stage.add(st.name, gkey, out.status, payload=out.payload, detail=out.detail,
                  field=out.field, location=out.location, value=out.value)
    return n

