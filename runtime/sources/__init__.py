"""Source connectors: stream source records out of CSV directories, JSON/JSONL files and SQL databases.

``open_source(uri, schema=..., options=...)`` picks the connector from the URI:

- ``csv:PATH`` (a directory of ``.csv`` files or one ``.csv`` file), or a bare path to either;
- ``json:PATH`` / ``jsonl:PATH`` (a ``.json``/``.jsonl`` file or a directory of them), or a bare path;
- ``sqlite:///PATH``, ``postgresql://...``, ``postgresql+psycopg://...``, ``mysql+pymysql://...``
  (any SQLAlchemy URL).

Options come from the query string (``?encoding=latin-1&key.patients=patient_id&modified.patients=
updated_at``) and/or the ``options`` mapping (which wins). For SQL URLs only fmap's own options
(``key``, ``key.*``, ``modified``, ``modified.*``, ``query.*``, ``db_schema``, ``yield_per``) are taken
out of the query string; the rest stay for the driver. Per-object key and modified-at fields come from
options first, then the declared source schema (``ObjectSchema.key`` / ``.modified_at``); the key
defaults to ``id``. How modified-at values are written (for delta runs) comes from
``modified_format[.object]`` (strptime) and ``modified_tz[.object]`` (IANA zone of naive values),
else from the modified-at field's ``vendor: {date_format, tz}`` in the source schema, else ISO-8601
in UTC.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from runtime.sources.base import (
    DEFAULT_KEY_FIELD,
    ObjectConfig,
    Source,
    SourceError,
    SourceRecord,
    modified_since,
)

__all__ = [
    "open_source",
    "plan_source_options",
    "Source",
    "SourceError",
    "SourceRecord",
    "ObjectConfig",
    "modified_since",
    "DEFAULT_KEY_FIELD",
]

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]+):(.*)$", re.S)
_SQL_SCHEMES = {"sqlite", "postgresql", "postgres", "mysql", "mariadb", "mssql", "oracle"}


def _split_query(rest: str) -> tuple[str, dict[str, str]]:
    if "?" not in rest:
        return rest, {}
    path, qs = rest.split("?", 1)
    return path, dict(parse_qsl(qs, keep_blank_values=True))


def open_source(
    uri: str, *, schema: Any = None, options: Mapping[str, str] | None = None,
    defaults: Mapping[str, str] | None = None,
) -> Source:
    """Open a source. ``schema`` is an optional source :class:`runtime.schema.SystemSchema`.
    Options: ``defaults`` (e.g. the compiled mapping's key/modified-at fields) < the URI's query
    string < ``options``."""
    extra = dict(options or {})
    base = dict(defaults or {})
    m = _SCHEME.match(uri)
    scheme = m.group(1).lower() if m else None
    if scheme and scheme.split("+", 1)[0] in _SQL_SCHEMES:
        return _open_sql(uri, schema, {**base, **extra})
    if scheme in ("csv", "json", "jsonl", "ndjson"):
        path, opts = _split_query(m.group(2))
        opts = {**base, **opts, **extra}
        if scheme == "csv":
            from runtime.sources.csv_dir import CsvDirSource

            return CsvDirSource(path, options=opts, schema=schema)
        from runtime.sources.json_files import JsonSource

        lines = None if scheme == "json" else True
        if scheme == "json" and Path(path).is_file():
            lines = False
        return JsonSource(path, options=opts, schema=schema, lines=lines)
    if scheme and scheme != "file":
        raise SourceError(
            f"unknown source kind '{scheme}:' (expected csv:, json:, jsonl:, or a database URL)"
        )
    if scheme == "file":
        uri = m.group(2).removeprefix("//")
    path_s, opts = _split_query(uri)
    opts = {**base, **opts, **extra}
    return _open_path(Path(path_s), opts, schema)


def _open_path(path: Path, opts: dict[str, str], schema: Any) -> Source:
    from runtime.sources.csv_dir import CsvDirSource
    from runtime.sources.json_files import JsonSource

    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".csv":
            return CsvDirSource(path, options=opts, schema=schema)
        if suffix in (".json", ".jsonl", ".ndjson"):
            return JsonSource(path, options=opts, schema=schema)
        raise SourceError(f"cannot tell the source kind of {path} (use csv:, json: or jsonl:)")
    if path.is_dir():
        suffixes = {p.suffix.lower() for p in path.iterdir() if p.is_file()}
        has_csv = ".csv" in suffixes
        has_json = bool(suffixes & {".json", ".jsonl", ".ndjson"})
        if has_csv and has_json:
            raise SourceError(
                f"{path} holds both CSV and JSON files; say csv:{path} or json:{path}"
            )
        if has_csv:
            return CsvDirSource(path, options=opts, schema=schema)
        if has_json:
            return JsonSource(path, options=opts, schema=schema)
        raise SourceError(f"no .csv, .json or .jsonl files in {path}")
    raise SourceError(f"source not found: {path}")


def _open_sql(uri: str, schema: Any, extra: dict[str, str]) -> Source:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from runtime.sources.sql import SqlSource, is_fmap_option

    try:
        url = make_url(uri)
    except ArgumentError:
        raise SourceError("invalid database URL") from None
    opts: dict[str, str] = {}
    for name, value in url.query.items():
        if is_fmap_option(name):
            opts[name] = value if isinstance(value, str) else value[-1]
    url = url.difference_update_query(list(opts))
    opts.update(extra)
    if url.get_backend_name() == "sqlite":
        db = url.database
        if db and db != ":memory:" and not db.startswith("file:") and not Path(db).is_file():
            raise SourceError(f"SQLite database not found: {db}")
    return SqlSource(url.render_as_string(hide_password=False), options=opts, schema=schema)


def plan_source_options(source_config: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """Source options from a compiled plan's ``source_config`` (key and modified-at per object).

    Duplicate keys are left to the executor's stage (its primary key quarantines the second
    record of a key), so the connector does not keep every key in memory: memory stays flat
    however large the source (a URI can still ask for ``check_duplicates=true``)."""
    out: dict[str, str] = {"check_duplicates": "false"}
    for obj, cfg in source_config.items():
        if cfg.get("key"):
            out[f"key.{obj}"] = str(cfg["key"])
        if cfg.get("modified_at"):
            out[f"modified.{obj}"] = str(cfg["modified_at"])
        for opt in ("modified_format", "modified_tz"):  # how the modified-at values are written
            if cfg.get(opt):
                out[f"{opt}.{obj}"] = str(cfg[opt])
    return out
