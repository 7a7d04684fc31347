"""What every source connector yields, and the rules they share.

A connector streams :class:`SourceRecord` values. It never drops a row: a row it cannot read properly
(wrong column count, undecodable bytes, a JSON line that does not parse, a missing or duplicate key)
is still yielded, with ``problem`` set, so the executor can quarantine it and every source record ends
in exactly one recorded outcome.

Messages (``problem`` strings and :class:`SourceError`) name files, objects, lines, byte offsets and
column names, never values: source rows are patient data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "SourceRecord",
    "Source",
    "SourceError",
    "ObjectConfig",
    "KeyTracker",
    "resolve_object_config",
    "key_of",
    "modified_since",
    "instant_parser",
    "InstantParser",
    "DEFAULT_KEY_FIELD",
]

DEFAULT_KEY_FIELD = "id"


class SourceError(Exception):
    """A source cannot be read at all (missing file, unknown object, bad option, broken JSON
    structure). The message is meant for the consultant: it names the file/object and position and
    contains no record values. Connectors raise it instead of letting a traceback escape."""


@dataclass(slots=True)
class SourceRecord:
    """One source record as read. Treat it as read-only (it is not frozen only because a frozen
    dataclass costs ~1 us more per record to build, a fifth of a whole record's transform).

    - ``object``: source object name ("patients").
    - ``key``: the stable source key as a string. A record without a usable key gets the
      deterministic fallback ``row:<n>`` (its 1-based ordinal within the object) and a ``problem``.
    - ``data``: the record as read (strings for CSV, JSON types for JSON, JSON-friendly Python for
      SQL). Nested arrays stay nested.
    - ``modified_at``: the value of the object's modified-at field as a string, or None.
    - ``position``: where it came from, for messages ("patients.csv:12", "export.json:40",
      "table patients row 7").
    - ``problem``: None, or why the row is malformed; the executor quarantines such records.
    """

    object: str
    key: str
    data: dict[str, Any]
    modified_at: str | None
    position: str
    problem: str | None = None


@runtime_checkable
class Source(Protocol):
    def objects(self) -> list[str]:
        """The object names this source holds, sorted."""

    def records(
        self, object: str, *, key: str | None = None, modified_at: str | None = None
    ) -> Iterator[SourceRecord]:
        """Stream the records of ``object`` in source order.

        ``key``: only the record(s) with this source key. ``modified_at``: only records whose
        modified-at instant is >= this one (both read with the object's declared format; inclusive,
        so ties at a watermark are the caller's to exclude by key); records with no modified-at
        value, or one that does not parse, are always included (they cannot be proved unchanged).
        Records with a problem are always included.
        """

    def count(self, object: str) -> int:
        """Number of records ``records(object)`` would yield (problem rows included)."""

    def config(self, object: str) -> ObjectConfig:
        """The key field(s), modified-at field and duplicate check used for ``object``."""

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class ObjectConfig:
    """Per-object reading rules: the key field(s) and the modified-at field, with the strptime
    format and time zone its values are written in (vendor exports rarely use ISO-8601: Clinic
    Management writes ``07/01/2025 10:00 AM`` New York time, which compared as text is older
    than ``12/30/2024``)."""

    key_fields: tuple[str, ...] = (DEFAULT_KEY_FIELD,)
    modified_field: str | None = None
    check_duplicates: bool = (
        True  # option check_duplicates=false when the source enforces uniqueness
    )
    modified_format: str | None = None  # strptime format; None: ISO-8601
    modified_tz: str | None = None  # IANA zone of naive values; None: UTC

    @property
    def key_label(self) -> str:
        return ",".join(self.key_fields)

    def instant_parser(self) -> InstantParser:
        return instant_parser(self.modified_format, self.modified_tz)


def resolve_object_config(
    object: str, options: Mapping[str, str], schema: Any | None = None
) -> ObjectConfig:
    """Options (``key.<object>``, ``modified.<object>``, or the global ``key``/``modified``) win over
    the declared source schema (``ObjectSchema.key`` / ``.modified_at``); the key defaults to ``id``.
    A key spec with commas ("clinic_id,patient_no") is a composite key, joined with ``|``."""
    obj_schema = schema.object(object) if schema is not None else None
    key = options.get(f"key.{object}") or (obj_schema.key if obj_schema is not None else None)
    key = key or options.get("key") or DEFAULT_KEY_FIELD
    modified = options.get(f"modified.{object}") or (
        obj_schema.modified_at if obj_schema is not None else None
    )
    modified = modified or options.get("modified") or None
    fields = tuple(k.strip() for k in key.split(",") if k.strip())
    if not fields:
        raise SourceError(f"empty key field for object '{object}'")
    dup = options.get("check_duplicates", "true").strip().lower() not in ("0", "false", "no", "off")
    # the modified-at field's format: options, else the declared field's vendor date_format / tz
    declared = obj_schema.field(modified) if obj_schema is not None and modified else None
    vendor = getattr(declared, "vendor", None) or {}
    fmt = (options.get(f"modified_format.{object}") or options.get("modified_format")
           or vendor.get("date_format") or None)
    tz = options.get(f"modified_tz.{object}") or options.get("modified_tz") or vendor.get("tz")
    tz = tz or None
    if tz is not None:
        _zone(tz, object)  # a bad zone name is an error now, not a wrong delta later
    return ObjectConfig(fields, modified, dup, fmt, tz)


def _zone(name: str, object: str = "") -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        where = f" for object '{object}'" if object else ""
        raise SourceError(f"unknown time zone '{name}'{where} (modified_tz)") from None


def key_of(data: Mapping[str, Any], cfg: ObjectConfig) -> tuple[str | None, str | None]:
    """(key, problem). The key is None when it is missing/empty/not a scalar."""
    parts = []
    for f in cfg.key_fields:
        v = data.get(f)
        if v is None or v == "":
            return None, f"missing source key (field '{f}')"
        if isinstance(v, bool) or isinstance(v, (dict, list)):
            return None, f"unusable source key (field '{f}' is {type(v).__name__})"
        if isinstance(v, float) and v.is_integer():
            v = int(v)  # 12.0 from a JSON export is the same key as 12
        parts.append(str(v))
    return "|".join(parts), None


def modified_value(data: Mapping[str, Any], cfg: ObjectConfig) -> str | None:
    if cfg.modified_field is None:
        return None
    v = data.get(cfg.modified_field)
    if v is None or v == "":
        return None
    if isinstance(v, datetime):
        return v.isoformat()
    return str(v)


InstantParser = Callable[[str | None], float | None]


def _parse_iso(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
    except ValueError:
        return None


def instant_parser(fmt: str | None = None, tz: str | None = None) -> InstantParser:
    """A function from a modified-at string to the instant it stands for (POSIX seconds), or None
    when the string does not parse. Values are read with ``fmt`` (strptime) when the source
    declares one, else (and as a fallback: ISO cannot be mistaken for a vendor format) as
    ISO-8601; a value without an offset is in ``tz`` (UTC when none is declared).

    Instants, never text: two spellings of one instant (``Z``/``+00:00``, other offsets) are equal,
    and ``07/01/2025`` is after ``12/30/2024``. Callers treat None as "cannot be ordered": such a
    record is always read by a delta run and never moves a watermark."""
    zone = _zone(tz) if tz else UTC

    def parse(value: str | None) -> float | None:
        if value is None:
            return None
        value = value.strip()
        d = None
        if fmt is not None:
            try:
                d = datetime.strptime(value, fmt)
            except ValueError:
                d = None
        if d is None:
            d = _parse_iso(value)
            if d is None:
                return None
        if d.tzinfo is None:
            d = d.replace(tzinfo=zone)
        return d.timestamp()

    return parse


_ISO = instant_parser()


def modified_since(value: str | None, since: str | None, parse: InstantParser | None = None
                   ) -> bool:
    """Is ``value`` at or after ``since``, as instants (``parse``: the object's
    :meth:`ObjectConfig.instant_parser`; ISO-8601 in UTC by default)? A missing value, or one
    that does not parse, counts as changed: it cannot be proved older, and comparing it as text
    would silently drop records."""
    if since is None or value is None:
        return True
    parse = parse or _ISO
    a, b = parse(value), parse(since)
    if a is None or b is None:
        return True
    return a >= b


class KeyTracker:
    """Assigns keys and flags duplicates within one object.

    Duplicate detection keeps a set of every key seen in the current pass: memory is about
    60-100 bytes per key (a short str object plus its set slot), i.e. ~100 MB for a million
    keys at the upper end. That is the one thing a connector keeps per record; option
    ``check_duplicates=false`` turns it off (e.g. a SQL table whose key is its primary key).
    """

    __slots__ = ("cfg", "seen", "n", "_single", "_dups", "_modified")

    def __init__(self, cfg: ObjectConfig) -> None:
        self.cfg = cfg
        self.seen: set[str] = set()
        self.n = 0
        self._single = cfg.key_fields[0] if len(cfg.key_fields) == 1 else None
        self._dups = cfg.check_duplicates
        self._modified = cfg.modified_field

    def assign(self, data: Mapping[str, Any], problem: str | None) -> tuple[str, str | None]:
        """Next record's (key, problem). ``problem`` from the reader wins over key problems."""
        self.n += 1
        key = None
        if self._single is not None:  # fast path: one key field holding a str or an int
            v = data.get(self._single)
            t = type(v)
            if t is str and v:
                key = v
            elif t is int:
                key = str(v)
        if key is None:
            key, key_problem = key_of(data, self.cfg)
            if key is None:
                return f"row:{self.n}", problem or key_problem
        if self._dups:
            seen = self.seen
            if key in seen:
                return key, problem or "duplicate source key"
            seen.add(key)
        return key, problem

    def make(
        self, object: str, data: dict[str, Any], position: str, problem: str | None = None
    ) -> SourceRecord:
        """Build the next record: key (or fallback), duplicate check, modified-at."""
        key, problem = self.assign(data, problem)
        if self._modified is None:
            return SourceRecord(object, key, data, None, position, problem)
        return SourceRecord(object, key, data, modified_value(data, self.cfg), position, problem)


def wanted(rec: SourceRecord, key: str | None, since: str | None,
           parse: InstantParser | None = None) -> bool:
    if key is not None and rec.key != key:
        return False
    if since is not None and rec.problem is None and not modified_since(rec.modified_at, since,
                                                                         parse):
        return False
    return True
