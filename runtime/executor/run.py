"""A migration run: stage, preflight, load, account.

``run_migration`` is the whole of `fmap run` below the CLI. It opens (or resumes) a run in the
state store, stages the source through the compiled module (or reuses a completed stage of the
same run), reports owner emails with no destination user before loading, loads in plan order, and
finishes with the per-map counts, checking that every record has exactly one outcome:
extracted = created + updated + unchanged + skipped + quarantined + failed.
"""

from __future__ import annotations

import gc
import hashlib
import importlib.util
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from runtime.destinations.base import Destination, FatalError
from runtime.executor.delta import advance_watermarks
from runtime.executor.extract import source_instant_parser, stage_all
from runtime.executor.load import Loader, LoadOptions, LoadStats, RunStopped
from runtime.executor.stage import Stage
from runtime.functions.dates import set_run_date
from runtime.plan import Plan
from runtime.schema.model import FieldType, SystemSchema
from runtime.state import COUNT_KEYS, StateStore

__all__ = ["RunOptions", "RunResult", "run_migration", "load_compiled", "InvariantError",
           "required_fields"]


class InvariantError(AssertionError):
    """Some source record has no outcome, or two: a bug, reported loudly."""


@dataclass
class RunOptions:
    params: dict[str, Any] = field(default_factory=dict)
    resume: int | None = None
    load: LoadOptions = field(default_factory=LoadOptions)
    run_date: Any = None  # datetime.date fixed for `today()` during the run
    on_stage_progress: Any = None  # callable(object, n)
    delta: bool = False  # read only records new or changed since each object's watermark
    include: Any = None  # sample runs: predicate (source object, SourceRecord) -> bool


@dataclass
class RunResult:
    run_id: int
    status: str  # completed | stopped | failed
    counts: dict[str, dict[str, int]]
    stats: LoadStats
    unmatched_owners: dict[str, int]
    message: str | None = None
    # per source object: records whose modified-at value does not parse with the declared format
    # (a delta run reads them every time; they never move a watermark). Reported by the caller
    # (`fmap run` prints it with its summary), not logged here: logged too, it showed twice
    unreadable_modified: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "completed" and not any(c["failed"] for c in self.counts.values())


def load_compiled(path: str | Path, name: str | None = None) -> ModuleType:
    """Import a generated module from a file (it imports only ``runtime``)."""
    path = Path(path).resolve()
    mod_name = name or f"fmap_compiled_{hashlib.sha256(str(path).encode()).hexdigest()[:12]}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    spec.loader.exec_module(module)
    return module


def _fingerprint(module: ModuleType, source_id: str, params: dict[str, Any]) -> str:
    h = hashlib.sha256()
    h.update(str(getattr(module, "FMAP_SHA256", "")).encode())
    h.update(source_id.encode())
    h.update(repr(sorted(params.items())).encode())
    return h.hexdigest()


def _fingerprint_mode(fp: str, opts: RunOptions) -> str:
    """A delta or sample stage is a different stage from a full one of the same source."""
    return hashlib.sha256(f"{fp}:{opts.delta}:{opts.include is not None}".encode()).hexdigest()


def check_invariant(counts: dict[str, dict[str, int]]) -> None:
    for m, c in counts.items():
        done = sum(c[k] for k in COUNT_KEYS[1:])
        if done != c["extracted"]:
            raise InvariantError(
                f"{m}: extracted {c['extracted']} but {done} outcomes recorded "
                f"({', '.join(f'{k} {c[k]}' for k in COUNT_KEYS[1:])})"
            )


def run_migration(module: ModuleType, source, dest: Destination, state: StateStore,
                  stage_path: str | Path, *, source_id: str = "",
                  options: RunOptions | None = None) -> RunResult:
    opts = options or RunOptions()
    plan: Plan = module.PLAN
    P = {**plan.params, **opts.params}
    if opts.run_date is not None:
        set_run_date(opts.run_date)
    fp = _fingerprint_mode(_fingerprint(module, source_id, P), opts)
    watermarks = None
    if opts.delta:
        watermarks = {}
        for obj in {st.source for st in plan.steps}:
            wm = state.get_watermark(obj)
            if wm is not None:
                watermarks[obj] = wm
    if opts.resume is not None:
        run_id = state.resume_run(opts.resume).id
    else:
        run_id = state.start_run(plan.migration or "migration", fmap_path=plan.fmap_path,
                                 source_sha256=fp, options={"params": _jsonable(P)})
    stage = Stage(f"{stage_path}.run{run_id}")
    frozen = _freeze_long_lived()
    try:
        if not stage.complete() or stage.fingerprint() != fp:
            stage.reset()
            extracted = stage_all(module, plan, source, stage, P, opts.on_stage_progress,
                                  watermarks=watermarks, include=opts.include,
                                  required=required_fields(plan, _schema_of(dest)))
            stage.conn.execute("INSERT OR REPLACE INTO meta VALUES ('extracted', ?)",
                               (json.dumps(extracted, sort_keys=True),))
            stage.mark_complete(fp)
        else:
            row = stage.conn.execute("SELECT v FROM meta WHERE k = 'extracted'").fetchone()
            extracted = json.loads(row[0]) if row else {}
        loader = Loader(plan, dest, state, stage, run_id, P, opts.load)
        status, message = "completed", None
        try:
            loader.run(extracted)
        except RunStopped as exc:
            status, message = "stopped", str(exc)
        except FatalError as exc:
            status, message = "stopped", f"destination refused: {exc}"
        if opts.include is None:  # a sample run says nothing about the rest of the source
            objects = {st.source for st in plan.steps}
            advance_watermarks(plan, stage, state, run_id,
                               {o: source_instant_parser(source, o) for o in objects})
        unreadable = stage.unreadable_modified()
        counts = state.finish_run(run_id, status)
        if status == "completed":
            check_invariant(counts)
        return RunResult(run_id, status, counts, loader.stats, loader.stats.unmatched_owners,
                         message, unreadable)
    finally:
        if frozen:
            gc.unfreeze()
        stage.close()


def _freeze_long_lived() -> bool:
    """Move what is alive now (the compiled module, the plan, the source and destination
    objects) out of the collector's reach for the run, so its full collections walk only what
    the run makes (they walked the plan each time: bench/bench_e2e.py, 2,000 patients, full
    collections 0.17-0.25 s -> 0.05-0.09 s a run). Undone at the end of the run
    (``gc.unfreeze``), so a process running many migrations does not keep every earlier run's
    objects frozen. A caller that froze objects of its own is left alone (unfreezing would take
    its objects with ours): True when this call froze."""
    if gc.get_freeze_count():
        return False
    gc.freeze()
    return True


def required_fields(plan: Plan, schema: SystemSchema | None) -> dict[str, tuple[str, ...]]:
    """Per object map: the target fields its records must fill, from the target's schema (none
    without one). What a run checks while staging (an assigned empty value quarantines the record
    before it can fail at the destination) and what `fmap profile` reports as missing, so the two
    name the same fields. Not counted: read-only fields (the CRM fills them), owner fields (the
    owner policy or the CRM's calling user does), deferred lookups (empty on the first write by
    design: filled once every map has loaded), and merges (they update records another map
    created, whose requirements are that map's)."""
    if schema is None:
        return {}
    out: dict[str, tuple[str, ...]] = {}
    for st in plan.steps:
        obj = schema.object(st.target) if st.kind == "map" else None
        if obj is None:
            continue
        need = tuple(f.api_name for f in obj.fields if f.required and not f.read_only
                     and f.type is not FieldType.owner and f.api_name not in st.deferred_fields)
        if need:
            out[st.name] = need
    return out


def _schema_of(dest: Destination) -> SystemSchema | None:
    try:
        return dest.schema()
    except Exception:  # a destination without a schema: the destination validates
        return None


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    return {k: (v if isinstance(v, (str, int, float, bool, type(None))) else str(v))
            for k, v in params.items()}
