"""The compile pipeline: load -> check -> plan -> generate, with a compile cache.

``compile_path`` returns the generated module text or the diagnostics that stopped it. The cache
(``.fmap-cache/`` by default) is keyed by the sha256 of the .fmap text, of its imports and the
compiler version, so unchanged mappings are not regenerated.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from compiler.check import CheckResult, check_path
from compiler.codegen import COMPILER_VERSION, generate_module
from compiler.plan import LoadPlan, build_plan
from dsl.diagnostics import Diagnostic, has_errors, sort_diagnostics

__all__ = ["CompileResult", "compile_path", "compile_checked", "cache_key"]


@dataclass
class CompileResult:
    check: CheckResult
    diagnostics: list[Diagnostic] = field(default_factory=list)
    plan: LoadPlan | None = None
    python: str | None = None
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.python is not None


@lru_cache(maxsize=1)
def _compiler_fingerprint() -> str:
    """A hash of the compiler's own code and templates: a changed code generator must never be
    served a module it did not generate (the version number alone changes too rarely)."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256(COMPILER_VERSION.encode())
    for f in sorted([*root.rglob("*.py"), *root.rglob("*.j2")]):
        h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def cache_key(check: CheckResult) -> str:
    h = hashlib.sha256()
    h.update(_compiler_fingerprint().encode())
    for name in sorted(check.program.sources):
        h.update(name.encode() + b"\0" + check.program.sources[name].encode() + b"\0")
    # what the generated PLAN's source config reads from the source schema file: an edited schema
    # (a declared modified-at format, a new key) must not be served the old module
    source = check.schemas.source if check.schemas is not None else None
    for obj in (source.objects if source is not None else []):
        h.update(json.dumps([obj.api_name, _object_config(obj)]).encode() + b"\0")
    return h.hexdigest()


def compile_checked(check: CheckResult, display_path: str) -> CompileResult:
    diags = list(check.diagnostics)
    prog = check.program
    if not check.ok or prog.module is None:
        return CompileResult(check, diags)
    plan, plan_diags = build_plan(prog.module)
    diags = sort_diagnostics(diags + list(plan_diags))
    if has_errors(diags):
        return CompileResult(check, diags, plan)
    text = prog.sources.get(display_path) or next(iter(prog.sources.values()), "")
    gen = generate_module(
        prog.module,
        order=[s.name for s in plan.steps],
        deferred={s.name: list(s.deferred_fields) for s in plan.steps},
        schema_changes=[c.model_dump(mode="json") for c in plan.schema_changes],
        source_text=text,
        source_path=display_path,
        valuemaps=prog.valuemaps(),
        params=prog.params(),
        source_config=_source_config(check, plan),
    )
    return CompileResult(check, diags, plan, gen.source)


def _source_config(check: CheckResult, plan: LoadPlan) -> dict[str, dict]:
    """Key and modified-at fields of the source objects the plan reads, from the source schema,
    with the format and zone the modified-at values are written in (the field's ``vendor:
    {date_format, tz}``) so a delta run compares them as instants (``modified_format`` /
    ``modified_tz``; see :func:`runtime.sources.plan_source_options`)."""
    source = check.schemas.source if check.schemas is not None else None
    if source is None:
        return {}
    out: dict[str, dict] = {}
    for name in sorted({s.source.split(".", 1)[0] for s in plan.steps}):
        obj = source.object(name)
        cfg = _object_config(obj) if obj is not None else None
        if cfg:
            out[name] = cfg
    return out


def _object_config(obj) -> dict[str, str]:
    """One source object's entry of the PLAN's source config (what ``cache_key`` hashes too)."""
    cfg = {k: v for k, v in (("key", obj.key), ("modified_at", obj.modified_at)) if v}
    declared = obj.field(obj.modified_at) if obj.modified_at else None
    vendor = (declared.vendor if declared is not None else None) or {}
    for opt, vkey in (("modified_format", "date_format"), ("modified_tz", "tz")):
        if isinstance(vendor.get(vkey), str) and vendor[vkey]:
            cfg[opt] = vendor[vkey]
    return cfg


def compile_path(path: str | Path, *, display: str | None = None, schema_dir: Path | None = None,
                 cache_dir: Path | None = None) -> CompileResult:
    display = display or str(path)
    check = check_path(path, display, schema_dir=schema_dir)
    key = cache_key(check) if cache_dir is not None and check.ok else None
    if key is not None:
        hit = cache_dir / f"{key}.py"
        meta = cache_dir / f"{key}.json"
        if hit.is_file() and meta.is_file():
            cached = CompileResult(check, list(check.diagnostics), None, hit.read_text("utf-8"),
                                   cached=True)
            plan_json = json.loads(meta.read_text("utf-8"))
            cached.plan = LoadPlan.model_validate(plan_json)
            return cached
    result = compile_checked(check, display)
    if key is not None and result.ok and result.plan is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        (cache_dir / f"{key}.py").write_text(result.python, "utf-8")
        (cache_dir / f"{key}.json").write_text(result.plan.model_dump_json(), "utf-8")
    return result
