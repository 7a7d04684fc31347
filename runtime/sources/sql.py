"""SQL source through SQLAlchemy: SQLite built in; PostgreSQL (``postgresql+psycopg://``) and MySQL
(``mysql+pymysql://``) with the optional extras.

Objects are the database's tables and views, plus named queries given as options
(``query.active_patients=SELECT ...``; a named query hides a table of the same name). Rows are
streamed (``yield_per``, which turns on server-side cursors where the driver has them) and ordered by
the key column(s) when the object has them, so the order is reproducible. Values become
JSON-friendly Python: Decimal stays Decimal, date/datetime/time become ISO strings, UUIDs strings,
bytes stay bytes. ``key``/``modified_at`` filters are applied in Python (no type guessing against
the column), so they scan the object.

Errors from the driver become :class:`SourceError` without SQL parameters (the engine is created
with ``hide_parameters=True``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

from runtime.sources.base import (
    KeyTracker,
    ObjectConfig,
    SourceError,
    SourceRecord,
    resolve_object_config,
    wanted,
)

__all__ = ["SqlSource", "FMAP_SQL_OPTIONS"]

# Query-string parameters that are fmap's, not the driver's.
FMAP_SQL_OPTIONS = ("key", "modified", "modified_format", "modified_tz", "db_schema", "yield_per",
                    "check_duplicates")
_FMAP_PREFIXES = ("key.", "modified.", "modified_format.", "modified_tz.", "query.")


def is_fmap_option(name: str) -> bool:
    return name in FMAP_SQL_OPTIONS or name.startswith(_FMAP_PREFIXES)


def _jsonable(v: Any) -> Any:
    if v is None or isinstance(v, (str, int, float, bool, Decimal)):
        return v
    if isinstance(v, (dt.datetime, dt.date, dt.time)):
        return v.isoformat()
    if isinstance(v, uuid.UUID):
        return str(v)
    if isinstance(v, memoryview):
        return v.tobytes()
    if isinstance(v, (bytes, bytearray)):
        return bytes(v)
    if isinstance(v, dt.timedelta):
        return v.total_seconds()
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    return str(v)


class SqlSource:
    kind = "sql"

    def __init__(
        self, url: str, *, options: Mapping[str, str] | None = None, schema: Any = None
    ) -> None:
        import sqlalchemy as sa
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError

        self.sa = sa
        self.options = dict(options or {})
        self.schema = schema
        try:
            parsed = sa.engine.make_url(url)
        except ArgumentError:
            raise SourceError("invalid database URL") from None
        self.display = parsed.render_as_string(hide_password=True)
        try:
            self.engine = sa.create_engine(parsed, hide_parameters=True)
        except NoSuchModuleError:
            raise SourceError(f"no SQLAlchemy dialect for {parsed.drivername}") from None
        except ImportError as e:
            raise SourceError(
                f"database driver for {parsed.drivername} is not installed ({e.name}); "
                "install fmap[postgres] or fmap[mysql]"
            ) from None
        self.db_schema = self.options.get("db_schema")
        self.yield_per = int(self.options.get("yield_per", 1000))
        self.queries = {
            k[len("query.") :]: v for k, v in self.options.items() if k.startswith("query.")
        }
        self._tables: list[str] | None = None
        self._meta = sa.MetaData()

    def _wrap(self, e: Exception, what: str) -> SourceError:
        msg = str(getattr(e, "orig", None) or e).splitlines()[0]
        return SourceError(f"{self.display}: {what}: {msg}")

    def _table_names(self) -> list[str]:
        if self._tables is None:
            try:
                insp = self.sa.inspect(self.engine)
                self._tables = insp.get_table_names(schema=self.db_schema) + insp.get_view_names(
                    schema=self.db_schema
                )
            except self.sa.exc.SQLAlchemyError as e:
                raise self._wrap(e, "cannot list tables") from None
        return self._tables

    def objects(self) -> list[str]:
        return sorted(set(self._table_names()) | set(self.queries))

    def _statement(self, object: str, key_fields: tuple[str, ...] | None):
        sa = self.sa
        if object in self.queries:
            return sa.text(self.queries[object])
        if object not in self._table_names():
            raise SourceError(
                f"no object '{object}' in {self.display} (objects: {', '.join(self.objects()) or 'none'})"
            )
        try:
            table = sa.Table(
                object,
                self._meta,
                schema=self.db_schema,
                autoload_with=self.engine,
                extend_existing=True,
            )
        except sa.exc.SQLAlchemyError as e:
            raise self._wrap(e, f"cannot read table '{object}'") from None
        stmt = sa.select(table)
        if key_fields and all(k in table.c for k in key_fields):
            stmt = stmt.order_by(*(table.c[k] for k in key_fields))
        return stmt

    def config(self, object: str) -> ObjectConfig:
        return resolve_object_config(object, self.options, self.schema)

    def count(self, object: str) -> int:
        sa = self.sa
        stmt = self._statement(object, None)
        if object in self.queries:
            stmt = sa.select(sa.func.count()).select_from(stmt.columns().subquery())
        else:
            stmt = sa.select(sa.func.count()).select_from(stmt.subquery())
        try:
            with self.engine.connect() as conn:
                return int(conn.execute(stmt).scalar_one())
        except sa.exc.SQLAlchemyError as e:
            raise self._wrap(e, f"cannot count '{object}'") from None

    def records(
        self, object: str, *, key: str | None = None, modified_at: str | None = None
    ) -> Iterator[SourceRecord]:
        cfg = resolve_object_config(object, self.options, self.schema)
        tracker = KeyTracker(cfg)
        filtering = key is not None or modified_at is not None
        parse = cfg.instant_parser() if modified_at is not None else None
        stmt = self._statement(object, cfg.key_fields)
        try:
            with self.engine.connect() as conn:
                result = conn.execution_options(yield_per=self.yield_per).execute(stmt)
                for n, row in enumerate(result.mappings(), start=1):
                    data = {k: _jsonable(v) for k, v in row.items()}
                    rec = tracker.make(object, data, f"{object} row {n}", None)
                    if filtering is False or wanted(rec, key, modified_at, parse):
                        yield rec
        except self.sa.exc.SQLAlchemyError as e:
            raise self._wrap(e, f"cannot read '{object}'") from None

    def close(self) -> None:
        self.engine.dispose()
