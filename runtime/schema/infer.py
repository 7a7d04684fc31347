"""Infer a source schema from sample files (``fmap schema infer``).

    infer_schema([Path("patients.csv"), Path("export.json")], system="clinic") -> SystemSchema

Inputs: ``.csv`` (one object per file, named after the stem), ``.json`` (a list of records, named
after the stem, or ``{"<object>": [...], ...}``; non-list members are ignored), ``.jsonl`` (one
record per line). Files are streamed and only the first ``sample_rows`` records of each object
are read (nested arrays are sampled up to ``sample_rows`` child records too).

Per column it infers, over the non-null sampled values:

- ``type``: boolean, integer, decimal, date, datetime, email, phone, url, text or textarea
  (text longer than ``textarea_over`` characters or containing a newline); a type is chosen when
  at least ``min_conformance`` (default 95 %) of the values fit it, so one "31/02/2019" in a date
  column does not make it text; misfits are counted in ``vendor["nonconforming"]`` for the
  data-quality report (pass ``min_conformance=1.0`` for strict inference). Integers with a leading zero are not integers (phone numbers,
  codes). Dates/datetimes record the detected format in ``vendor["date_format"]`` (a strptime
  format, or ``"iso8601"``); day-first wins when a column fits both ``%d/%m/%Y`` and
  ``%m/%d/%Y`` (``vendor["date_format_ambiguous"] = True``).
- ``picklist`` with sorted ``picklist_values`` for text columns with at most ``enum_max``
  distinct values over at least ``enum_min_rows`` non-null values;
- ``nullable`` (a null, empty or missing value was seen), ``max_length`` (longest string);
- nested arrays of records -> child objects ``"<object>.<field>"`` with ``parent`` set and an
  ``array`` field whose ``item_object`` names them; nested records -> type ``object``;
- ``key``: ``id`` if it is unique and never null, else the first such ``*_id`` column (one named
  after the object preferred); ``modified_at``: an ``updated_at``/``modified_at``-like datetime.

Unreadable input raises :class:`SchemaLoadError` (bad encoding names the file and byte offset).
Non-fatal findings go to the optional ``warnings`` list.
"""

from __future__ import annotations

import codecs
import csv
import json
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from runtime.schema.io import SchemaLoadError, SchemaWarning
from runtime.schema.model import FieldSchema, FieldType, ObjectSchema, SystemSchema

__all__ = ["infer_schema", "infer_object", "DATE_FORMATS", "DATETIME_FORMATS"]

DATE_FORMATS = ["%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y", "%d-%m-%Y", "%d.%m.%Y", "%Y/%m/%d",
                "%d %b %Y", "%d %B %Y", "%b %d, %Y"]
DATETIME_FORMATS = ["%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y %H:%M:%S",
                    "%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f"]
_MISSING = object()
_INT = re.compile(r"^-?(0|[1-9]\d*)$")
_DEC = re.compile(r"^-?((0|[1-9]\d*)(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")  # "007" is a code
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
_PHONE = re.compile(r"^\+?[\d\s().\-/]+$")
_URL = re.compile(r"^https?://\S+$", re.I)
_ISO_DT = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
_PHONE_NAME = re.compile(r"phone|mobile|tel|fax|cell", re.I)
_BOOL = {"true", "false", "yes", "no", "y", "n", "t", "f"}
_MODIFIED = ("updated_at", "modified_at", "last_modified", "modified", "updated", "last_updated",
             "modified_time", "date_modified", "last_modified_at")


# --------------------------------------------------------------------------------------------------
# reading


class _DecodingReader:
    """A text stream over a binary file that reports undecodable bytes by byte offset."""

    def __init__(self, fh, path: Path, encoding: str) -> None:
        self.fh = fh
        self.path = path
        self.encoding = encoding
        self.dec = codecs.getincrementaldecoder(encoding)("strict")
        self.offset = 0  # bytes handed to the decoder so far
        self.first = True

    def read(self, size: int = 65536) -> str:
        data = self.fh.read(size)
        pending = len(self.dec.getstate()[0])
        start = self.offset - pending
        self.offset += len(data)
        try:
            text = self.dec.decode(data, final=not data)
        except UnicodeDecodeError as exc:
            raise _encoding_error(self.path, self.encoding, start + exc.start) from None
        if self.first and text:
            self.first = False
            text = text.removeprefix("\ufeff")
        return text


def _encoding_error(path: Path, encoding: str, offset: int) -> SchemaLoadError:
    return SchemaLoadError(path, "$", f"bytes are not valid {encoding} at byte offset {offset}; "
                           "pass the file's encoding")


def _lines(path: Path, encoding: str) -> Iterator[str]:
    """Decoded lines with their newline, erroring with the byte offset of bad bytes."""
    offset = 0
    with path.open("rb") as fh:
        for raw in fh:
            try:
                line = raw.decode(encoding)
            except UnicodeDecodeError as exc:
                raise _encoding_error(path, encoding, offset + exc.start) from None
            if offset == 0:
                line = line.removeprefix("\ufeff")
            offset += len(raw)
            yield line


def _csv_records(path: Path, encoding: str, limit: int,
                 warn: list[SchemaWarning] | None) -> tuple[list[str], list[dict[str, Any]]]:
    lines = _lines(path, encoding)
    try:
        first = next(lines)
    except StopIteration:
        return [], []
    delimiter = max(",;\t|", key=first.count) if any(c in first for c in ",;\t|") else ","

    def chain() -> Iterator[str]:
        yield first
        yield from lines

    reader = csv.reader(chain(), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        return [], []
    header = [h.strip() for h in header]
    records = []
    for row in reader:
        if len(records) >= limit:
            break
        if not row:
            continue
        if len(row) > len(header) and warn is not None:
            warn.append(SchemaWarning(str(path), f"$[{len(records)}]",
                                      f"row has {len(row)} values for {len(header)} columns"))
        records.append({h: (row[i] if i < len(row) else None) for i, h in enumerate(header)})
    return header, records


def _jsonl_records(path: Path, encoding: str, limit: int) -> list[Any]:
    out = []
    for n, line in enumerate(_lines(path, encoding), start=1):
        if len(out) >= limit:
            break
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise SchemaLoadError(path, f"$[{len(out)}]",
                                  f"line {n}: invalid JSON: {exc.msg}") from None
    return out


def _json_objects(path: Path, encoding: str, limit: int) -> dict[str, list[Any]]:
    from runtime.sources.base import SourceError
    from runtime.sources.json_files import JsonStreamReader

    with path.open("rb") as fh:
        reader = JsonStreamReader(_DecodingReader(fh, path, encoding), str(path))
        try:
            first = reader.peek()
            if first == "[":
                return {path.stem: _take(reader, limit, drain=False)}  # stop after the sample
            if first == "{":
                out: dict[str, list[Any]] = {}
                for name in reader.iter_members():
                    if reader.peek() == "[":
                        out[name] = _take(reader, limit)
                    else:
                        reader.skip_value()
                return out
            raise SchemaLoadError(path, "$", "expected a JSON array of records or an object of "
                                  f"arrays, found {first!r}" if first else "the file is empty")
        except SourceError as exc:
            raise SchemaLoadError(path, "$", str(exc)) from None


def _take(reader, limit: int, *, drain: bool = True) -> list[Any]:
    """The first ``limit`` elements of the array at the reader's position. With ``drain`` the rest
    is consumed (not kept) so later members of an object-of-arrays file are reachable."""
    out = []
    for _line, value in reader.iter_array():
        if len(out) < limit:
            out.append(value)
        elif not drain:
            break
    return out


# --------------------------------------------------------------------------------------------------
# inference


def _null(v: Any) -> bool:
    return v is None or v is _MISSING or (isinstance(v, str) and v.strip() == "")


def _fits_format(values: list[str], fmt: str, max_fail: int | None = None) -> int:
    """How many values parse with ``fmt``; stops early (returning -1) after ``max_fail`` misses."""
    ok = fail = 0
    for v in values:
        try:
            datetime.strptime(v, fmt)
            ok += 1
        except ValueError:
            fail += 1
            if max_fail is not None and fail > max_fail:
                return -1
    return ok


def _iso_dt(v: str) -> bool:
    if not _ISO_DT.match(v):
        return False
    try:
        datetime.fromisoformat(v.replace("Z", "+00:00") if v.endswith("Z") else v)
        return True
    except ValueError:
        return False


class _Options:
    def __init__(self, sample_rows: int, enum_max: int, enum_min_rows: int, textarea_over: int,
                 min_conformance: float) -> None:
        self.sample_rows = sample_rows
        self.enum_max = enum_max
        self.enum_min_rows = enum_min_rows
        self.textarea_over = textarea_over
        self.min_conformance = min_conformance


def _string_type(values: list[str], opts: _Options,
                 phone_hint: bool = False) -> tuple[FieldType, dict[str, Any]]:
    n = len(values)
    need = max(1, int(n * opts.min_conformance + 0.9999)) if n else 0
    stripped = [v.strip() for v in values]

    def pick(count: int) -> bool:
        return count >= need

    def nonconf(count: int) -> dict[str, Any]:
        return {"nonconforming": n - count} if count < n else {}

    if pick(sum(v.lower() in _BOOL for v in stripped)):
        return FieldType.boolean, nonconf(sum(v.lower() in _BOOL for v in stripped))
    c = sum(bool(_INT.match(v)) for v in stripped)
    if pick(c):
        return FieldType.integer, nonconf(c)
    c = sum(bool(_DEC.match(v)) for v in stripped)
    if pick(c):
        return FieldType.decimal, nonconf(c)
    # dates: the format fitting most values
    probe = [v for v in stripped if 6 <= len(v) <= 40]
    if len(probe) >= need:
        best = max(((fmt, _fits_format(stripped, fmt, n - need)) for fmt in DATE_FORMATS),
                   key=lambda t: t[1])
        if pick(best[1]):
            vendor: dict[str, Any] = {"date_format": best[0], **nonconf(best[1])}
            if best[0] == "%d/%m/%Y" and _fits_format(stripped, "%m/%d/%Y") == best[1]:
                vendor["date_format_ambiguous"] = True
            return FieldType.date, vendor
        best = max(((fmt, _fits_format(stripped, fmt, n - need)) for fmt in DATETIME_FORMATS),
                   key=lambda t: t[1])
        if pick(best[1]):
            vendor = {"date_format": best[0], **nonconf(best[1])}
            if best[0].startswith("%d/%m/%Y") and \
                    _fits_format(stripped, best[0].replace("%d/%m", "%m/%d")) == best[1]:
                vendor["date_format_ambiguous"] = True
            return FieldType.datetime, vendor
        c = sum(_iso_dt(v) for v in stripped)  # offsets, "T", "Z", fractions
        if pick(c):
            return FieldType.datetime, {"date_format": "iso8601", **nonconf(c)}
    c = sum(bool(_EMAIL.match(v)) for v in stripped)
    if pick(c):
        return FieldType.email, nonconf(c)
    c = sum(bool(_URL.match(v)) for v in stripped)
    if pick(c):
        return FieldType.url, nonconf(c)
    # A column named like a phone: 7-15 digits. Otherwise 10-15 digits with a dialling prefix
    # ("+", "0", "("), so SSNs (9 digits) and NHS numbers ("943 476 5919") stay text.
    def phone(v: str) -> bool:
        if not _PHONE.match(v):
            return False
        digits = sum(ch.isdigit() for ch in v)
        if phone_hint:
            return 7 <= digits <= 15
        return 10 <= digits <= 15 and v[0] in "+0("

    c = sum(phone(v) for v in stripped)
    if pick(c):
        return FieldType.phone, nonconf(c)
    if any(len(v) > opts.textarea_over or "\n" in v for v in values):
        return FieldType.textarea, {}
    return FieldType.text, {}


def _infer_field(name: str, values: list[Any], total: int, opts: _Options, obj_name: str,
                 children: list[ObjectSchema], warn: list[SchemaWarning] | None,
                 source: str) -> FieldSchema:
    present = [v for v in values if not _null(v)]
    nullable = len(present) < total
    vendor: dict[str, Any] = {}
    max_length = None
    picklist: list[str] = []
    item_object = None
    if not present:
        ftype = FieldType.text
        vendor["all_null"] = True
    elif all(isinstance(v, bool) for v in present):
        ftype = FieldType.boolean
    elif all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        ftype = FieldType.integer
    elif all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        ftype = FieldType.decimal
    elif all(isinstance(v, dict) for v in present):
        ftype = FieldType.object
        vendor["keys"] = sorted({k for v in present for k in v})
    elif all(isinstance(v, list) for v in present):
        items = [x for v in present for x in v]
        if items and all(isinstance(x, dict) for x in items):
            ftype = FieldType.array
            item_object = f"{obj_name}.{name}"
            child, grandchildren = infer_object(item_object, items[: opts.sample_rows], opts,
                                                warn=warn, source=source)
            child.parent = obj_name
            children.append(child)
            children.extend(grandchildren)
        else:
            ftype = FieldType.array
            vendor["items"] = "scalar"
    else:
        strings = [v if isinstance(v, str) else json.dumps(v) if isinstance(v, dict | list)
                   else str(v) for v in present]
        ftype, vendor = _string_type(strings, opts, phone_hint=bool(_PHONE_NAME.search(name)))
        if ftype in (FieldType.text, FieldType.textarea, FieldType.email, FieldType.phone,
                     FieldType.url):
            max_length = max(len(s) for s in strings)
        distinct = {s.strip() for s in strings}
        if (ftype == FieldType.text and len(strings) >= opts.enum_min_rows
                and len(distinct) <= opts.enum_max
                and not all(_UUID.match(d) for d in distinct)):  # references, not a value set
            ftype = FieldType.picklist
            picklist = sorted(distinct)
    return FieldSchema(api_name=name, type=ftype, nullable=nullable, max_length=max_length,
                       picklist_values=picklist, item_object=item_object, vendor=vendor)


def _singular(name: str) -> str:
    base = name.rsplit(".", 1)[-1]
    if base.endswith("ies"):
        return base[:-3] + "y"
    return base[:-1] if base.endswith("s") else base


def infer_object(name: str, records: list[Any], opts: _Options, *,
                 columns: list[str] | None = None, warn: list[SchemaWarning] | None = None,
                 source: str = "") -> tuple[ObjectSchema, list[ObjectSchema]]:
    """Infer one object (and its nested child objects) from sampled records."""
    rows = [r for r in records if isinstance(r, dict)]
    if len(rows) < len(records) and warn is not None:
        warn.append(SchemaWarning(source, "$", f"{len(records) - len(rows)} elements of "
                                  f"{name!r} are not records and were ignored"))
    order: dict[str, None] = dict.fromkeys(columns or [])
    for r in rows:
        order.update(dict.fromkeys(r))
    children: list[ObjectSchema] = []
    fields = []
    for col in order:
        values = [r.get(col, _MISSING) for r in rows]
        fields.append(_infer_field(col, values, len(rows), opts, name, children, warn, source))
    obj = ObjectSchema(api_name=name, fields=fields)
    obj.key = _guess_key(obj, rows)
    for f in fields:
        if f.api_name.lower() in _MODIFIED and f.type in (FieldType.datetime, FieldType.date):
            obj.modified_at = f.api_name
            break
    return obj, children


def _guess_key(obj: ObjectSchema, rows: list[dict[str, Any]]) -> str | None:
    def unique(col: str) -> bool:
        vals = [r.get(col) for r in rows]
        if not vals or any(_null(v) or isinstance(v, dict | list) for v in vals):
            return False
        return len({str(v).strip() for v in vals}) == len(vals)

    names = obj.field_names()
    if "id" in names and unique("id"):
        return "id"
    lowered = {n.lower(): n for n in names}
    if "id" in lowered and unique(lowered["id"]):
        return lowered["id"]
    preferred = f"{_singular(obj.api_name)}_id".lower()
    candidates = [n for n in names if n.lower().endswith("_id") or n.lower().endswith("id")]
    candidates.sort(key=lambda n: n.lower() != preferred)
    for n in candidates:
        if n.lower().endswith("_id") and unique(n):
            return n
    return None


def infer_schema(
    paths: list[Path] | list[str],
    system: str,
    *,
    sample_rows: int = 1000,
    enum_max: int = 20,
    enum_min_rows: int = 20,
    textarea_over: int = 255,
    min_conformance: float = 0.95,
    encoding: str = "utf-8",
    warnings: list[SchemaWarning] | None = None,
) -> SystemSchema:
    """Infer a ``kind: source`` schema from sample files (see module docstring)."""
    opts = _Options(sample_rows, enum_max, enum_min_rows, textarea_over, min_conformance)
    objects: list[ObjectSchema] = []
    origin: dict[str, Path] = {}
    for p in paths:
        path = Path(p)
        if not path.is_file():
            raise SchemaLoadError(path, "$", "file not found")
        suffix = path.suffix.lower()
        found: list[tuple[str, list[Any], list[str] | None]] = []
        if suffix in (".csv", ".tsv", ".txt"):
            header, rows = _csv_records(path, encoding, sample_rows, warnings)
            found.append((path.stem, rows, header))
        elif suffix in (".jsonl", ".ndjson"):
            found.append((path.stem, _jsonl_records(path, encoding, sample_rows), None))
        elif suffix == ".json":
            for name, rows in _json_objects(path, encoding, sample_rows).items():
                found.append((name, rows, None))
        else:
            raise SchemaLoadError(path, "$", f"cannot infer a schema from {suffix or 'a file without extension'!r} "
                                  "files (use .csv, .json or .jsonl)")
        for name, rows, header in found:
            if name in origin:
                raise SchemaLoadError(path, "$", f"object {name!r} is also defined by {origin[name]}")
            origin[name] = path
            obj, children = infer_object(name, rows, opts, columns=header, warn=warnings,
                                         source=str(path))
            if not rows and warnings is not None:
                warnings.append(SchemaWarning(str(path), "$", f"{name!r} has no records"))
            objects.append(obj)
            objects.extend(children)
    return SystemSchema(system=system, kind="source",
                        description=f"inferred from {len(list(paths))} sample file(s)",
                        objects=objects)
