"""Schema resolution: the source and target schemas a mapping is checked against.

Target schema, in layers (later layers replace same-named objects and fields of earlier ones, see
:meth:`SystemSchema.merged`):

1. the dialect's bundled standard schema (``get_dialect(name).standard_schema()``);
2. org snapshots: the ``target DIALECT "path"`` file (relative to the .fmap), the target option
   ``schema="dir"`` (relative to the .fmap) and ``--schema DIR``; in a directory, the files named
   after the dialect (``zoho*.json``, ``zoho*.yaml``), in name order. A snapshot is either a saved
   :class:`SystemSchema` (``fmap schema pull``) or the vendor's own metadata bundle, which the
   dialect's loader converts;
3. the .fmap's own ``create module/object`` and ``extend`` declarations, so declared custom fields
   are known.

Source schema: the ``source NAME "path"`` file (relative to the .fmap), else
``<fmap dir>/schemas/NAME.yaml`` (``.yml``, ``.json``). None found: one FM302 warning and the
source checks are skipped.

Problems are diagnostics on the ``source``/``target`` line (FM300 unknown dialect with the
registry's suggestion, FM301 a file that cannot be loaded, naming the file and the JSON path,
FM320 non-fatal metadata findings); never a traceback.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from compiler.program import Program
from dsl import ir
from dsl.codes import diag
from dsl.diagnostics import Diagnostic
from runtime.dialects import Dialect, UnknownDialect, get_dialect
from runtime.schema.io import SchemaLoadError, SchemaWarning, schema_from_data
from runtime.schema.model import FieldSchema, FieldType, ObjectSchema, SystemSchema
from runtime.schema.source import check_source_schema

__all__ = ["Schemas", "resolve_schemas", "declared_field", "SCHEMA_SUFFIXES"]

SCHEMA_SUFFIXES = (".json", ".yaml", ".yml")
# The field a new custom module gets for its record name, per dialect.
@dataclass
class Schemas:
    """What the schema checks know. Any member may be None: that family of checks is skipped."""

    dialect: Dialect | None = None
    target: SystemSchema | None = None
    source: SystemSchema | None = None
    options: dict[str, Any] = field(default_factory=dict)  # target options (literal values)
    source_file: str | None = None
    target_files: list[str] = field(default_factory=list)  # snapshots overlaid, in order
    declared: dict[tuple[str, str], ir.FieldDecl] = field(default_factory=dict)

    def target_object(self, name: str) -> ObjectSchema | None:
        return self.target.object(name) if self.target is not None else None

    def source_object(self, name: str) -> ObjectSchema | None:
        return self.source.object(name) if self.source is not None else None

    @property
    def audit_fields_allowed(self) -> bool:
        return self.options.get("audit_fields") is True


def resolve_schemas(prog: Program, schema_dir: Path | None = None,
                    base_dir: Path | None = None) -> tuple[Schemas, list[Diagnostic]]:
    out: list[Diagnostic] = []
    s = Schemas()
    m = prog.module
    if m is None:
        return s, out
    base = base_dir if base_dir is not None else (prog.path.parent if prog.path else None)
    shown_base = Path(m.file).parent
    target = m.first(ir.TargetDecl)
    if target is not None:
        s.options = {o.name.value: getattr(o.value, "value", None) for o in target.options}
        _target(s, target, m, base, shown_base, schema_dir, out)
    source = m.first(ir.SourceDecl)
    if source is not None:
        _source(s, source, base, shown_base, out)
    return s, out


# -------------------------------------------------------------------------------------- target


def _target(s: Schemas, t: ir.TargetDecl, m: ir.Module, base: Path | None, shown_base: Path,
            schema_dir: Path | None, out: list[Diagnostic]) -> None:
    try:
        s.dialect = get_dialect(t.name.value)
    except UnknownDialect as exc:
        out.append(diag("FM300", f"unknown target dialect `{t.name.value}`", t.name.span,
                        hint=f"did you mean `{exc.suggestion}`?" if exc.suggestion
                        else "known dialects: " + ", ".join(exc.known)))
        return
    try:
        schema = _standard(s.dialect)
    except SchemaLoadError as exc:
        out.append(_load_error(exc, t.span))
        return
    files: list[tuple[Path, str]] = []
    if t.schema_path is not None:
        files.append(_located(t.schema_path, base, shown_base))
    opt_dir = s.options.get("schema")
    if isinstance(opt_dir, str):
        d, shown = _located(opt_dir, base, shown_base)
        files.extend(_dialect_files(d, shown, s.dialect.name))
    if schema_dir is not None:
        files.extend(_dialect_files(Path(schema_dir), str(schema_dir), s.dialect.name))
    for path, shown in files:
        warnings: list[SchemaWarning] = []
        try:
            snap = _load_snapshot(path, shown, s.dialect, warnings)
        except SchemaLoadError as exc:
            out.append(_load_error(exc, t.span))
            continue
        for w in warnings:
            out.append(diag("FM320", f"{w.source}: {w.json_path}: {w.message}", t.span,
                            hint="fields of an unknown type are not type-checked"))
        schema = schema.merged(snap)
        s.target_files.append(shown)
    s.target = _declared(schema, m, s)


def _located(given: str, base: Path | None, shown_base: Path) -> tuple[Path, str]:
    p = Path(given)
    shown = str(shown_base / given) if not p.is_absolute() else given
    if p.is_absolute() or base is None:
        return p, shown
    return base / p, shown


def _dialect_files(d: Path, shown: str, dialect: str) -> list[tuple[Path, str]]:
    if not d.is_dir():
        return [(d, shown)] if d.is_file() else []
    found = sorted(p for p in d.iterdir()
                   if p.is_file() and p.name.lower().startswith(dialect)
                   and p.suffix.lower() in SCHEMA_SUFFIXES)
    return [(p, str(Path(shown) / p.name)) for p in found]


def _load_snapshot(path: Path, shown: str, dialect: Dialect,
                   warnings: list[SchemaWarning]) -> SystemSchema:
    """A saved SystemSchema, or the vendor's own metadata bundle (converted by the dialect)."""
    if path.suffix.lower() not in SCHEMA_SUFFIXES:
        raise SchemaLoadError(shown, "$", "unsupported schema file type; use .json, .yaml or .yml")
    data = _load_data(path, shown)
    if isinstance(data, dict) and "system" in data:
        return schema_from_data(data, source_name=shown)
    try:
        return dialect.load_metadata(data, source_name=shown, warnings=warnings)
    except SchemaLoadError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:  # a loader gap: still a value
        raise SchemaLoadError(shown, "$", f"unreadable {dialect.label} metadata: {exc}") from None


def _load_data(path: Path, shown: str) -> Any:
    """Parsed file contents, cached by (path, size, mtime): `fmap check` over many files, the
    mutation bench and the tests read the same schema files again and again. Callers must not
    mutate the result (schema_from_data builds new models from it)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise SchemaLoadError(shown, "$", "file not found") from None
    except OSError as exc:
        raise SchemaLoadError(shown, "$", f"cannot read file: {exc.strerror or exc}") from None
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _CACHE:
        try:
            text = path.read_bytes().decode("utf-8-sig")
        except OSError as exc:
            raise SchemaLoadError(shown, "$", f"cannot read file: {exc.strerror or exc}") from None
        except UnicodeDecodeError as exc:
            raise SchemaLoadError(shown, "$", f"not UTF-8 text (byte offset {exc.start})") from None
        if len(_CACHE) > 64:
            _CACHE.clear()
            _SOURCES.clear()
        _CACHE[key] = _parse(text, path.suffix.lower(), shown)
    return _CACHE[key]


_CACHE: dict[tuple[str, int, int], Any] = {}
_SOURCES: dict[tuple[int, str], tuple[Any, SystemSchema]] = {}
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _parse(text: str, suffix: str, shown: str) -> Any:
    if suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise SchemaLoadError(shown, "$", f"invalid JSON at line {exc.lineno} column "
                                              f"{exc.colno}: {exc.msg}") from None
    try:
        return yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506 (a safe loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise SchemaLoadError(shown, "$", f"invalid YAML{where}") from None


def _load_error(exc: SchemaLoadError, span) -> Diagnostic:
    more = f" (and {len(exc.details) - 1} more)" if len(exc.details) > 1 else ""
    return diag("FM301", f"cannot load schema `{exc.path}`: {exc.json_path}: {exc.message}{more}",
                span, hint=f"fix the value at {exc.json_path} in {exc.path}, or re-pull the snapshot")


# ---------------------------------------------------------------------------- declared schema


_TYPES = {t.value: t for t in FieldType}


def declared_field(fd: ir.FieldDecl) -> FieldSchema:
    """A ``create module``/``extend`` field as the normalised model sees it."""
    tname = fd.type.name.value
    ftype = _TYPES.get(tname, FieldType.unknown)
    args = fd.type.args
    kw: dict[str, Any] = {}
    if ftype in (FieldType.text,) and args and isinstance(args[0], int):
        kw["max_length"] = args[0]
    if ftype in (FieldType.decimal, FieldType.currency) and args:
        ints = [a for a in args if isinstance(a, int)]
        if ints:
            kw["precision"] = ints[0]
        if len(ints) > 1:
            kw["scale"] = ints[1]
    if ftype is FieldType.lookup and args:
        kw["lookup_targets"] = [str(a) for a in args]
    if ftype is FieldType.owner:
        kw["lookup_targets"] = ["Users"]
    values = [v.value for v in fd.values if isinstance(getattr(v, "value", None), str)]
    return FieldSchema(api_name=fd.name.value, label=fd.label, type=ftype, required=fd.required,
                       unique=fd.unique, external_id=fd.external_id, sensitive=fd.sensitive,
                       custom=True, picklist_values=values, **kw)


def _declared(schema: SystemSchema, m: ir.Module, s: Schemas) -> SystemSchema:
    overlay: list[ObjectSchema] = []
    dialect = s.dialect
    for sd in m.decls(ir.SchemaDecl):
        name = sd.name.value
        fields = [declared_field(f) for f in sd.fields]
        for f in sd.fields:
            s.declared[(name, f.name.value)] = f
        if sd.action == "extend":
            if schema.object(name) is None and not any(o.api_name == name for o in overlay):
                continue  # FM305 (checks.target_names): extending an object that does not exist
            overlay.append(ObjectSchema(api_name=name, fields=fields))
            continue
        implicit = (dialect.custom_object_fields(name) if dialect
                    else [FieldSchema(api_name="id", type=FieldType.id, read_only=True)])
        declared = {f.api_name for f in fields}
        overlay.append(ObjectSchema(
            api_name=name, label=sd.label, custom=True,
            fields=[f for f in implicit if f.api_name not in declared] + fields))
    if not overlay:
        return schema
    return _overlay(schema, overlay)


def _overlay(base: SystemSchema, overlay: list[ObjectSchema]) -> SystemSchema:
    """:meth:`SystemSchema.merged` without its deep copy: the layers below are shared, read-only
    models (cached per process), and the declared layer is rebuilt on every check."""
    objects = {o.api_name: o for o in base.objects}
    for o in overlay:
        if o.api_name in objects:
            fields = {f.api_name: f for f in objects[o.api_name].fields}
            fields.update({f.api_name: f for f in o.fields})
            objects[o.api_name] = objects[o.api_name].model_copy(
                update={"fields": list(fields.values())})
        else:
            objects[o.api_name] = o
    return base.model_copy(update={"objects": list(objects.values())})


_STANDARD: dict[str, SystemSchema] = {}


def _standard(dialect: Dialect) -> SystemSchema:
    """The dialect's standard schema, copied once per process; shared and never mutated."""
    if dialect.name not in _STANDARD:
        _STANDARD[dialect.name] = dialect.standard_schema()
    return _STANDARD[dialect.name]


# -------------------------------------------------------------------------------------- source


def _source(s: Schemas, src: ir.SourceDecl, base: Path | None, shown_base: Path,
            out: list[Diagnostic]) -> None:
    name = src.name.value
    candidates: list[tuple[Path, str]] = []
    if src.schema_path is not None:
        candidates.append(_located(src.schema_path, base, shown_base))
    elif base is not None:
        for suffix in (".yaml", ".yml", ".json"):
            candidates.append((base / "schemas" / f"{name}{suffix}",
                               str(shown_base / "schemas" / f"{name}{suffix}")))
    existing = [(p, shown) for p, shown in candidates if p.is_file()]
    if src.schema_path is not None and not existing:
        path, shown = candidates[0]
        out.append(diag("FM301", f"cannot load schema `{shown}`: $: file not found", src.span,
                        hint="the path is relative to the .fmap file"))
        return
    if not existing:
        where = f"`{candidates[0][1]}`" if candidates else "a schema file"
        out.append(diag("FM302", f"no schema for source `{name}`; source fields are not checked",
                        src.span, hint=f"add {where}, or give the path: "
                        f"`source {name} \"schemas/{name}.yaml\"`"))
        return
    path, shown = existing[0]
    try:
        data = _load_data(path, shown)
        key = (id(data), shown)
        if key not in _SOURCES or _SOURCES[key][0] is not data:
            schema = schema_from_data(data, source_name=shown)
            _SOURCES[key] = (data, check_source_schema(schema, source_name=shown))
        s.source = _SOURCES[key][1]  # shared and read-only, like the standard schemas
        s.source_file = shown
    except SchemaLoadError as exc:
        out.append(_load_error(exc, src.span))

