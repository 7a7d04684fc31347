"""Load and save a :class:`SystemSchema` as JSON or YAML, with errors as values.

Every problem with a schema file (missing file, bad JSON/YAML, wrong top-level type, a field that is
not valid in the model) becomes one :class:`SchemaLoadError` carrying the file, a JSON path to the
offending value (``$.objects[2].fields[5].type``) and a human message. Pydantic's own error dump and
raw ``KeyError`` tracebacks never reach the user.

Exceptions::

    SchemaLoadError(ValueError)      path, json_path, message, details[(json_path, message), ...]

Vendor metadata loaders (``runtime.dialects.<crm>.metadata``) use the same error, plus
:class:`SchemaWarning` for problems that degrade rather than fail (an unknown vendor type).
The small ``expect_*`` helpers below are what those loaders use to read untrusted JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from runtime.schema.model import SystemSchema

__all__ = [
    "SchemaLoadError",
    "SchemaWarning",
    "load_schema",
    "save_schema",
    "dump_schema",
    "parse_schema",
    "schema_from_data",
    "json_path_from_loc",
    "join_path",
    "expect_dict",
    "expect_list",
    "expect_str",
    "opt_str",
    "opt_bool",
    "opt_int",
]

SUFFIXES = {".json": "json", ".yaml": "yaml", ".yml": "yaml"}


class SchemaLoadError(ValueError):
    """A schema or vendor-metadata document could not be loaded.

    ``path`` names the file (or a pseudo-name such as ``"zoho:Leads fields"`` for an in-memory
    payload), ``json_path`` the offending value (``$`` for the whole document), ``message`` what is
    wrong. ``details`` lists every problem found (the first one is also ``json_path``/``message``).
    """

    def __init__(
        self,
        path: str | Path | None,
        json_path: str,
        message: str,
        *,
        details: list[tuple[str, str]] | None = None,
    ) -> None:
        self.path = str(path) if path is not None else None
        self.json_path = json_path
        self.message = message
        self.details = details or [(json_path, message)]
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        text = f"{where}{self.json_path}: {self.message}"
        if len(self.details) > 1:
            text += f" (and {len(self.details) - 1} more)"
        return text

    def __reduce__(self):  # keep picklable (pytest-xdist, multiprocessing)
        return (_rebuild_error, (self.path, self.json_path, self.message, self.details))


def _rebuild_error(path, json_path, message, details):
    return SchemaLoadError(path, json_path, message, details=details)


@dataclass(frozen=True)
class SchemaWarning:
    """A non-fatal loader finding, e.g. an unknown vendor field type mapped to ``unknown``."""

    source: str
    json_path: str
    message: str

    def __str__(self) -> str:
        return f"{self.source}: {self.json_path}: {self.message}"


# --------------------------------------------------------------------------------------------------
# JSON paths


def join_path(base: str, key: str | int) -> str:
    """``join_path("$.objects", 2) == "$.objects[2]"``; keys that are not identifiers are quoted."""
    if isinstance(key, int):
        return f"{base}[{key}]"
    if key.isidentifier():
        return f"{base}.{key}"
    return f"{base}[{json.dumps(key)}]"


def json_path_from_loc(loc: Iterable[str | int], base: str = "$") -> str:
    path = base
    for part in loc:
        path = join_path(path, part)
    return path


# --------------------------------------------------------------------------------------------------
# readers for untrusted JSON (used by the vendor loaders)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number",
            float: "a number"}.get(type(value), type(value).__name__)


def expect_dict(value: Any, json_path: str, source: str | None) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise SchemaLoadError(source, json_path, f"expected an object, got {_type_name(value)}")
    return dict(value)


def expect_list(value: Any, json_path: str, source: str | None) -> list[Any]:
    if not isinstance(value, list):
        raise SchemaLoadError(source, json_path, f"expected an array, got {_type_name(value)}")
    return value


def expect_str(obj: Mapping[str, Any], key: str, json_path: str, source: str | None) -> str:
    """A required, non-empty string member ``key`` of ``obj`` (``json_path`` is obj's path)."""
    path = join_path(json_path, key)
    if key not in obj:
        raise SchemaLoadError(source, path, f"missing required key {key!r}")
    value = obj[key]
    if not isinstance(value, str) or not value.strip():
        raise SchemaLoadError(source, path, f"expected a non-empty string, got {_type_name(value)}")
    return value


def opt_str(obj: Mapping[str, Any], key: str, json_path: str, source: str | None) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise SchemaLoadError(source, join_path(json_path, key),
                              f"expected a string, got {_type_name(value)}")
    return value


def opt_bool(obj: Mapping[str, Any], key: str, json_path: str, source: str | None,
             default: bool = False) -> bool:
    value = obj.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise SchemaLoadError(source, join_path(json_path, key),
                              f"expected true or false, got {_type_name(value)}")
    return value


def opt_int(obj: Mapping[str, Any], key: str, json_path: str, source: str | None) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise SchemaLoadError(source, join_path(json_path, key),
                              f"expected an integer, got {_type_name(value)}")
    return int(value)


# --------------------------------------------------------------------------------------------------
# SystemSchema files


def _format_for(path: Path, fmt: str | None) -> str:
    if fmt:
        if fmt not in ("json", "yaml"):
            raise SchemaLoadError(path, "$", f"unsupported schema format {fmt!r} (use json or yaml)")
        return fmt
    try:
        return SUFFIXES[path.suffix.lower()]
    except KeyError:
        raise SchemaLoadError(
            path, "$", f"unsupported schema file type {path.suffix or '(none)'!r}; "
            "use .json, .yaml or .yml") from None


def schema_from_data(data: Any, *, source_name: str | Path | None = None) -> SystemSchema:
    """Validate already-parsed data (a dict) into a :class:`SystemSchema`."""
    if not isinstance(data, dict):
        raise SchemaLoadError(source_name, "$",
                              f"a schema must be an object with 'system' and 'objects', got {_type_name(data)}")
    try:
        return SystemSchema.model_validate(data)
    except ValidationError as exc:
        details = []
        for err in exc.errors(include_url=False):
            path = json_path_from_loc(err["loc"])
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = "unknown key"
            elif err["type"] == "missing":
                msg = "missing required key"
            elif err["type"] == "enum":
                msg = f"{err.get('input')!r} is not a valid value ({err['ctx']['expected']})"
            details.append((path, msg))
        first_path, first_msg = details[0]
        raise SchemaLoadError(source_name, first_path, first_msg, details=details) from None


def parse_schema(text: str, *, fmt: str, source_name: str | Path | None = None) -> SystemSchema:
    """Parse schema text (``fmt`` is ``"json"`` or ``"yaml"``)."""
    if fmt == "json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SchemaLoadError(
                source_name, "$", f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
            ) from None
    elif fmt == "yaml":
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise SchemaLoadError(source_name, "$", f"invalid YAML{where}: {problem}") from None
    else:
        raise SchemaLoadError(source_name, "$", f"unsupported schema format {fmt!r}")
    return schema_from_data(data, source_name=source_name)


def load_schema(path: str | Path, *, fmt: str | None = None) -> SystemSchema:
    """Load a schema file (``.json``, ``.yaml``, ``.yml``). Raises :class:`SchemaLoadError`."""
    path = Path(path)
    fmt = _format_for(path, fmt)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SchemaLoadError(path, "$", "file not found") from None
    except OSError as exc:
        raise SchemaLoadError(path, "$", f"cannot read file: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SchemaLoadError(path, "$", f"not UTF-8 text (byte offset {exc.start})") from None
    return parse_schema(text, fmt=fmt, source_name=path)


def dump_schema(schema: SystemSchema, *, fmt: str = "json") -> str:
    """Serialise a schema; defaults are omitted so committed snapshots stay small and reviewable."""
    data = schema.model_dump(mode="json", exclude_defaults=True)
    data.setdefault("system", schema.system)
    data["kind"] = schema.kind  # always explicit: readers tell sources from targets at a glance
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if fmt == "yaml":
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    raise ValueError(f"unsupported schema format {fmt!r}")


def save_schema(schema: SystemSchema, path: str | Path, *, fmt: str | None = None) -> Path:
    """Write ``schema`` to ``path`` (format from the suffix unless ``fmt`` is given)."""
    path = Path(path)
    text = dump_schema(schema, fmt=_format_for(path, fmt))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path
