"""CSV source: a directory with one CSV file per object (``patients.csv`` -> object ``patients``), or
a single CSV file.

Reading rules (fixed, so a run is reproducible):

- Encoding is explicit (option ``encoding``, default ``utf-8-sig``); a leading UTF-8 BOM is stripped
  for utf-8 and utf-8-sig alike.
- The dialect is fixed: comma delimiter, double-quote quoting (options ``delimiter`` -- a character or
  ``tab``/``semicolon``/``pipe``/``comma`` -- and ``quotechar``). Sniffing is off unless ``sniff=true``.
- The first row is the header. A duplicate column name is a :class:`SourceError`.
- Blank lines are not records. Empty fields stay ``""`` (never None).
- A row with the wrong number of fields is still a record: the fields that line up with the header
  are in ``data``, any extra values under ``"__extra__"``, and ``problem`` says what is wrong.
- Undecodable bytes: for ASCII-compatible encodings (utf-8, latin-1, cp1252, ...) files are decoded
  line by line, so bad bytes are a per-row problem ("undecodable bytes at byte offset N") and the rest
  of the file still loads; the row is decoded with U+FFFD replacements so its key can still be
  reported. Bad bytes in the header row are a :class:`SourceError`. For other encodings (utf-16/32)
  the file is decoded as a stream and bad bytes are a :class:`SourceError` naming the byte offset.
- Duplicate keys within an object: second and later occurrences get ``problem="duplicate source
  key"`` (see :class:`runtime.sources.base.KeyTracker` for the memory cost).
- Streaming: files are read line by line; nothing but the duplicate-key set grows with file size.
  Lines ending in a lone ``\\r`` (classic Mac) are not supported.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

from runtime.sources.base import (
    KeyTracker,
    ObjectConfig,
    SourceError,
    SourceRecord,
    resolve_object_config,
    wanted,
)

__all__ = ["CsvDirSource"]

_DELIMITERS = {"comma": ",", "tab": "\t", "semicolon": ";", "pipe": "|"}
_FIELD_LIMIT = 64 * 1024 * 1024  # clinical notes exported as one CSV cell can exceed csv's 128 KiB
_BOM = codecs.BOM_UTF8
_CHUNK = 64 * 1024
_NONE: list[int] = []  # shared, never mutated


def _truthy(v: str | None) -> bool:
    return (v or "").strip().lower() in {"1", "true", "yes", "on"}


def _ascii_compatible(encoding: str) -> bool:
    probe = b'\n\r,;"|az09'
    try:
        return probe.decode(encoding) == probe.decode("ascii")
    except (UnicodeDecodeError, LookupError):
        return False


class CsvDirSource:
    kind = "csv"

    def __init__(
        self, path: str | Path, *, options: Mapping[str, str] | None = None, schema: Any = None
    ) -> None:
        self.path = Path(path)
        self.options = dict(options or {})
        self.schema = schema
        if self.path.is_dir():
            files = sorted(
                p for p in self.path.iterdir() if p.suffix.lower() == ".csv" and p.is_file()
            )
        elif self.path.is_file():
            files = [self.path]
        else:
            raise SourceError(f"CSV source not found: {self.path}")
        self._files: dict[str, Path] = {}
        for f in files:
            if f.stem in self._files:
                raise SourceError(f"two CSV files for object '{f.stem}' in {self.path}")
            self._files[f.stem] = f
        enc = self.options.get("encoding", "utf-8-sig")
        try:
            self.encoding = codecs.lookup(enc).name
        except LookupError:
            raise SourceError(f"unknown encoding '{enc}' for CSV source {self.path}") from None
        self._utf8 = self.encoding in ("utf-8", "utf-8-sig")
        self._line_decoding = _ascii_compatible(self.encoding)
        delim = self.options.get("delimiter", ",")
        self.delimiter = _DELIMITERS.get(delim.lower(), delim)
        self.quotechar = self.options.get("quotechar", '"')
        if len(self.delimiter) != 1 or len(self.quotechar) != 1:
            raise SourceError("CSV delimiter and quotechar must be single characters")
        self.sniff = _truthy(self.options.get("sniff"))
        limit = int(self.options.get("field_size_limit", _FIELD_LIMIT))
        if csv.field_size_limit() < limit:
            csv.field_size_limit(limit)

    # -- Source protocol -------------------------------------------------------------------------
    def objects(self) -> list[str]:
        return sorted(self._files)

    def config(self, object: str) -> ObjectConfig:
        return resolve_object_config(object, self.options, self.schema)

    def _file(self, object: str) -> Path:
        try:
            return self._files[object]
        except KeyError:
            raise SourceError(
                f"no object '{object}' in CSV source {self.path} (objects: {', '.join(self.objects()) or 'none'})"
            ) from None

    def count(self, object: str) -> int:
        n = 0
        for _line, row, _bad, _err in self._rows(self._file(object), header=False):
            if row:
                n += 1
        return max(n - 1, 0)  # minus the header

    def records(
        self, object: str, *, key: str | None = None, modified_at: str | None = None
    ) -> Iterator[SourceRecord]:
        path = self._file(object)
        cfg = self.config(object)
        tracker = KeyTracker(cfg)
        filtering = key is not None or modified_at is not None
        parse = cfg.instant_parser() if modified_at is not None else None
        name = path.name
        header: list[str] | None = None
        width = 0
        for line, row, bad, err in self._rows(path, header=True):
            if header is None:
                if err or bad:
                    what = (
                        err
                        or f"undecodable bytes at byte offset {bad[0]} (encoding {self.encoding})"
                    )
                    raise SourceError(f"{name}:{line}: cannot read the header row: {what}")
                if not row:
                    continue
                header = row
                width = len(header)
                seen: set[str] = set()
                for col in header:
                    if col in seen:
                        raise SourceError(f"{name}:{line}: duplicate column name '{col}' in header")
                    seen.add(col)
                continue
            if not row and not err and not bad:
                continue
            problem = None
            if err:
                problem = f"unreadable CSV row: {err}"
                data: dict[str, Any] = {}
            else:
                data = dict(zip(header, row, strict=False))
                if bad:
                    problem = (
                        f"undecodable bytes at byte offset {bad[0]} (encoding {self.encoding})"
                    )
                elif len(row) != width:
                    problem = f"row has {len(row)} fields, header has {width}"
                if len(row) > width:
                    data["__extra__"] = row[width:]
            rec = tracker.make(object, data, f"{name}:{line}", problem)
            if filtering is False or wanted(rec, key, modified_at, parse):
                yield rec

    def close(self) -> None:
        pass

    # -- reading ---------------------------------------------------------------------------------
    def _dialect(self, fh: BinaryIO) -> dict[str, Any]:
        if not self.sniff:
            return {"delimiter": self.delimiter, "quotechar": self.quotechar}
        sample = fh.read(_CHUNK)
        fh.seek(0)
        text = sample.decode(self.encoding, errors="replace").lstrip("\ufeff")
        try:
            d = csv.Sniffer().sniff(text)
        except csv.Error:
            return {"delimiter": self.delimiter, "quotechar": self.quotechar}
        return {"delimiter": d.delimiter, "quotechar": d.quotechar or '"'}

    def _rows(
        self, path: Path, *, header: bool
    ) -> Iterator[tuple[int, list[str], list[int], str | None]]:
        """(start line, fields, byte offsets of undecodable bytes in this row, csv error)."""
        try:
            fh = open(path, "rb")
        except OSError as e:
            raise SourceError(f"cannot open {path}: {e.strerror}") from None
        with fh:
            bad: list[int] = []
            lines = (
                self._lines_by_line(fh, bad)
                if self._line_decoding
                else self._lines_stream(fh, path)
            )
            reader = csv.reader(lines, strict=False, **self._dialect(fh))
            prev = 0
            while True:
                err = None
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except csv.Error as e:
                    row, err = [], str(e)
                    if reader.line_num == prev:  # no progress: give up rather than loop
                        raise SourceError(f"{path.name}:{prev + 1}: unreadable CSV: {e}") from None
                start = prev + 1
                prev = reader.line_num
                if bad:
                    found = bad[:]
                    bad.clear()
                else:
                    found = _NONE
                yield start, row, found, err

    def _lines_by_line(self, fh: BinaryIO, bad: list[int]) -> Iterator[str]:
        enc = "utf-8" if self._utf8 else self.encoding
        offset = 0
        first = True
        for raw in fh:
            if first:
                first = False
                if self._utf8 and raw.startswith(_BOM):
                    raw = raw[len(_BOM) :]
                    offset = len(_BOM)
            try:
                text = raw.decode(enc)
            except UnicodeDecodeError as e:
                bad.append(offset + e.start)
                text = raw.decode(enc, errors="replace")
            offset += len(raw)
            yield text

    def _lines_stream(self, fh: BinaryIO, path: Path) -> Iterator[str]:
        dec = codecs.getincrementaldecoder(self.encoding)("strict")
        consumed = 0
        carry = ""
        while True:
            chunk = fh.read(_CHUNK)
            try:
                text = dec.decode(chunk, final=not chunk)
            except UnicodeDecodeError as e:
                raise SourceError(
                    f"{path.name}: undecodable bytes near byte offset {consumed + e.start} "
                    f"(encoding {self.encoding})"
                ) from None
            consumed += len(chunk)
            if consumed == len(chunk):
                text = text.lstrip("\ufeff")
            text = carry + text
            if chunk:  # keep a trailing partial line for the next chunk
                cut = text.rfind("\n") + 1
                text, carry = text[:cut], text[cut:]
            else:
                carry = ""
            start = 0
            while (j := text.find("\n", start)) != -1:
                yield text[start : j + 1]
                start = j + 1
            if start < len(text):
                yield text[start:]
            if not chunk:
                return
