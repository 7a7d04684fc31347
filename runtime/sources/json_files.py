"""JSON and JSON Lines sources: one file, or a directory of ``.json``/``.jsonl`` files.

- ``.json`` holding a top-level list: one object named after the file's stem.
- ``.json`` holding a top-level object: every member whose value is a list is an object
  (``{"patients": [...], "clinics": [...]}``); other members (export metadata) are ignored.
- ``.jsonl``: one record per line, object named after the stem. A line that does not parse (or bytes
  that do not decode) is still a record, with ``problem`` set and the raw line under ``"__line__"``.

Streaming: ``.json`` files are read in 64 KiB chunks by a small incremental reader built on
``json.JSONDecoder.raw_decode``, one array element at a time, so memory is bounded by the largest
single record (capped by option ``max_record_bytes``, default 64 MiB), not by the file. Finding which
objects an object-of-lists file holds needs one streaming pass over the file (cached).

Nested arrays (AeronaClinic patients with embedded ``appointments``, ``treatments``...) stay nested
in ``data``. An array element that is not a JSON object is a record with a problem and its value under
``"__value__"``. Broken JSON structure in a ``.json`` file cannot be resynchronised: records before
the break are yielded, then a :class:`SourceError` names the file and line.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from runtime.sources.base import (
    KeyTracker,
    ObjectConfig,
    SourceError,
    SourceRecord,
    resolve_object_config,
    wanted,
)

__all__ = ["JsonSource", "JsonStreamReader"]

_CHUNK = 64 * 1024
_WS = " \t\n\r"
_NUMBER_CHARS = frozenset("0123456789+-.eE")
_DEFAULT_MAX_RECORD = 64 * 1024 * 1024


class JsonStreamReader:
    """Incremental reader over a text stream holding one JSON value.

    ``iter_array()`` yields the elements of a top-level array; ``iter_members()`` yields the member
    names of a top-level object, and after each name the caller consumes the value with
    ``iter_array()``/``skip_value()``/``read_value()``. Consumed text is dropped as it goes.
    """

    def __init__(self, fh: IO[str], name: str, *, max_record: int = _DEFAULT_MAX_RECORD) -> None:
        self.fh = fh
        self.name = name
        self.max_record = max_record
        self.buf = ""
        self.pos = 0
        self.eof = False
        self._lines = 1  # line number at self._counted
        self._counted = 0
        self._dec = json.JSONDecoder()

    # -- buffer ----------------------------------------------------------------------------------
    def _fill(self, size: int | None = None) -> bool:
        if self.eof:
            return False
        if self.pos > _CHUNK:  # drop consumed text
            self.line()  # count newlines up to pos before dropping them
            self.buf = self.buf[self.pos :]
            self._counted -= self.pos
            self.pos = 0
        chunk = self.fh.read(size or _CHUNK)
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def line(self, pos: int | None = None) -> int:
        """1-based line number of ``pos`` (default: the current position). Positions must not go
        backwards between calls."""
        pos = self.pos if pos is None else pos
        if pos > self._counted:
            self._lines += self.buf.count("\n", self._counted, pos)
            self._counted = pos
        return self._lines

    def _error(self, what: str) -> SourceError:
        return SourceError(f"{self.name}:{self.line()}: invalid JSON: {what}")

    def peek(self) -> str:
        """Next non-whitespace character ('' at end of input)."""
        while True:
            buf, n = self.buf, len(self.buf)
            p = self.pos
            while p < n and buf[p] in _WS:
                p += 1
            self.pos = p
            if p < n:
                return buf[p]
            if not self._fill():
                return ""

    def expect(self, ch: str) -> None:
        got = self.peek()
        if got != ch:
            raise self._error(f"expected '{ch}', found {repr(got) if got else 'end of file'}")
        self.pos += 1

    def read_value(self, *, at_value: bool = False) -> Any:
        if not at_value:
            self.peek()
        while True:
            try:
                value, end = self._dec.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as e:
                if self.eof:
                    raise self._error(e.msg) from None
                if len(self.buf) - self.pos > self.max_record:
                    raise self._error(f"a value is larger than {self.max_record} bytes") from None
                # grow geometrically so a large record is re-parsed O(log n) times, not O(n)
                self._fill(max(_CHUNK, len(self.buf) - self.pos))
                continue
            if not self.eof and isinstance(value, (int, float)) and not isinstance(value, bool):
                # "12" or "0." at the end of the buffer may continue in the next chunk ("123",
                # "0.5"): decode again with more text
                j, buf, n = end, self.buf, len(self.buf)
                while j < n and buf[j] in _NUMBER_CHARS:
                    j += 1
                if j == n and self._fill():
                    continue
            self.pos = end
            return value

    def skip_value(self) -> None:
        if self.peek() == "[":
            for _ in self.iter_array():
                pass
        else:
            self.read_value()

    def iter_array(self) -> Iterator[tuple[int, Any]]:
        """Elements of the array at the current position, with the line each starts on."""
        self.expect("[")
        if self.peek() == "]":
            self.pos += 1
            return
        while True:
            if self.peek() == "":
                raise self._error("unexpected end of file in an array")
            line = self.line()
            yield line, self.read_value(at_value=True)
            nxt = self.peek()
            if nxt == ",":
                self.pos += 1
            elif nxt == "]":
                self.pos += 1
                return
            else:
                raise self._error(
                    f"expected ',' or ']' after an array element, found {repr(nxt) if nxt else 'end of file'}"
                )

    def iter_members(self) -> Iterator[str]:
        """Member names of the object at the current position; the caller consumes each value."""
        self.expect("{")
        if self.peek() == "}":
            self.pos += 1
            return
        while True:
            if self.peek() != '"':
                raise self._error("expected a member name")
            name = self.read_value()
            self.expect(":")
            yield name
            nxt = self.peek()
            if nxt == ",":
                self.pos += 1
            elif nxt == "}":
                self.pos += 1
                return
            else:
                raise self._error(
                    f"expected ',' or '}}' after a member value, found {repr(nxt) if nxt else 'end of file'}"
                )


class JsonSource:
    kind = "json"

    def __init__(
        self,
        path: str | Path,
        *,
        options: Mapping[str, str] | None = None,
        schema: Any = None,
        lines: bool | None = None,
    ) -> None:
        self.path = Path(path)
        self.options = dict(options or {})
        self.schema = schema
        enc = self.options.get("encoding", "utf-8-sig")
        try:
            self.encoding = codecs.lookup(enc).name
        except LookupError:
            raise SourceError(f"unknown encoding '{enc}' for JSON source {self.path}") from None
        self.max_record = int(self.options.get("max_record_bytes", _DEFAULT_MAX_RECORD))
        if self.path.is_dir():
            files = sorted(
                p
                for p in self.path.iterdir()
                if p.is_file() and p.suffix.lower() in (".json", ".jsonl", ".ndjson")
            )
        elif self.path.is_file():
            files = [self.path]
        else:
            raise SourceError(f"JSON source not found: {self.path}")
        self._lines_mode = lines
        self._files = files
        self._objects: dict[str, tuple[Path, str]] | None = (
            None  # object -> (file, "list"|"jsonl"|"member")
        )

    # -- discovery -------------------------------------------------------------------------------
    def _is_jsonl(self, f: Path) -> bool:
        if self._lines_mode is not None and f == self.path:
            return self._lines_mode
        return f.suffix.lower() in (".jsonl", ".ndjson")

    def _open_text(self, f: Path) -> IO[str]:
        try:
            return open(f, encoding=self.encoding, newline="")
        except OSError as e:
            raise SourceError(f"cannot open {f}: {e.strerror}") from None

    def _index(self) -> dict[str, tuple[Path, str]]:
        if self._objects is not None:
            return self._objects
        objects: dict[str, tuple[Path, str]] = {}

        def add(name: str, f: Path, how: str) -> None:
            if name in objects:
                raise SourceError(
                    f"object '{name}' appears in both {objects[name][0].name} and {f.name}"
                )
            objects[name] = (f, how)

        for f in self._files:
            if self._is_jsonl(f):
                add(f.stem, f, "jsonl")
                continue
            with self._open_text(f) as fh:
                r = JsonStreamReader(fh, f.name, max_record=self.max_record)
                first = self._guard(f, r.peek)
                if first == "[":
                    add(f.stem, f, "list")
                elif first == "{":
                    for member in self._guard(f, lambda r=r: list(self._list_members(r))):
                        add(member, f, "member")
                elif first == "":
                    add(f.stem, f, "list")  # an empty file: an empty object
                else:
                    raise SourceError(f"{f.name}: expected a JSON array or object at the top level")
        self._objects = objects
        return objects

    @staticmethod
    def _list_members(r: JsonStreamReader) -> Iterator[str]:
        for name in r.iter_members():
            is_list = r.peek() == "["
            r.skip_value()
            if is_list:
                yield name

    def _guard(self, f: Path, fn):
        try:
            return fn()
        except UnicodeDecodeError as e:
            raise SourceError(
                f"{f.name}: undecodable bytes (encoding {self.encoding}) near character {e.start}"
            ) from None

    # -- Source protocol -------------------------------------------------------------------------
    def objects(self) -> list[str]:
        return sorted(self._index())

    def _where(self, object: str) -> tuple[Path, str]:
        idx = self._index()
        try:
            return idx[object]
        except KeyError:
            raise SourceError(
                f"no object '{object}' in JSON source {self.path} (objects: {', '.join(sorted(idx)) or 'none'})"
            ) from None

    def config(self, object: str) -> ObjectConfig:
        return resolve_object_config(object, self.options, self.schema)

    def count(self, object: str) -> int:
        f, how = self._where(object)
        if how == "jsonl":
            n = 0
            with open(f, "rb") as fh:
                for raw in fh:
                    if raw.strip():
                        n += 1
            return n
        return sum(1 for _ in self._elements(f, how, object))

    def records(
        self, object: str, *, key: str | None = None, modified_at: str | None = None
    ) -> Iterator[SourceRecord]:
        f, how = self._where(object)
        cfg = resolve_object_config(object, self.options, self.schema)
        tracker = KeyTracker(cfg)
        filtering = key is not None or modified_at is not None
        parse = cfg.instant_parser() if modified_at is not None else None
        items = self._jsonl(f) if how == "jsonl" else self._elements(f, how, object)
        for line, value, problem in items:
            if isinstance(value, dict):
                data = value
            else:
                data = {"__value__": value}
                problem = problem or f"record is not a JSON object ({type(value).__name__})"
            rec = tracker.make(object, data, f"{f.name}:{line}", problem)
            if filtering is False or wanted(rec, key, modified_at, parse):
                yield rec

    def close(self) -> None:
        pass

    # -- reading ---------------------------------------------------------------------------------
    def _elements(self, f: Path, how: str, object: str) -> Iterator[tuple[int, Any, str | None]]:
        with self._open_text(f) as fh:
            r = JsonStreamReader(fh, f.name, max_record=self.max_record)
            try:
                if r.peek() == "":
                    return
                if how == "list":
                    for line, value in r.iter_array():
                        yield line, value, None
                    return
                for name in r.iter_members():
                    if name == object and r.peek() == "[":
                        for line, value in r.iter_array():
                            yield line, value, None
                        return
                    r.skip_value()
            except UnicodeDecodeError as e:
                raise SourceError(
                    f"{f.name}:{r.line()}: undecodable bytes (encoding {self.encoding}); "
                    f"decoding error at character {e.start} of the current chunk"
                ) from None

    def _jsonl(self, f: Path) -> Iterator[tuple[int, Any, str | None]]:
        enc = "utf-8" if self.encoding in ("utf-8", "utf-8-sig") else self.encoding
        offset = 0
        try:
            fh = open(f, "rb")
        except OSError as e:
            raise SourceError(f"cannot open {f}: {e.strerror}") from None
        with fh:
            for n, raw in enumerate(fh, start=1):
                start = offset
                offset += len(raw)
                if n == 1 and raw.startswith(codecs.BOM_UTF8) and enc == "utf-8":
                    raw = raw[3:]
                    start += 3
                if not raw.strip():
                    continue
                try:
                    text = raw.decode(enc)
                except UnicodeDecodeError as e:
                    text = raw.decode(enc, errors="replace").rstrip("\r\n")
                    yield (
                        n,
                        {"__line__": text},
                        (
                            f"undecodable bytes at byte offset {start + e.start} (encoding {self.encoding})"
                        ),
                    )
                    continue
                try:
                    value = json.loads(text)
                except json.JSONDecodeError as e:
                    yield (
                        n,
                        {"__line__": text.rstrip("\r\n")},
                        f"invalid JSON line: {e.msg} at column {e.colno}",
                    )
                    continue
                yield n, value, None
