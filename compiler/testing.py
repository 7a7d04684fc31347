"""`fmap test`: run the ``test`` blocks of a .fmap file against its compiled transforms.

The file is compiled in memory (no compile cache) and the generated module is executed from its
text with a real filename (``<path>.py``, registered in ``linecache``) so ``runtime.locate`` and
tracebacks name generated and ``.fmap`` lines. Nothing is written to disk.

How a test runs (the same steps the executor takes, minus staging and loading):

* ``given patients {...}`` feeds each record to every map over ``patients``; maps over nested
  arrays (``patients.appointments[]``, ``patients.plans[].items[]``) get each embedded element with
  its ancestors as ``parents``. ``given patients.appointments[] [...]`` feeds elements directly,
  with one synthetic empty parent ``{}`` per array level (``parent.id`` is missing).
* Routing: within a routing group a record goes to every map whose ``where`` holds, or to the
  ``otherwise`` map(s) when none does. Skip rules then drop the record for that map.
* Merges group the child records fed to them by their ``by`` key; each group's output updates the
  record the parent map produced for that key (or stands alone when the test gave no parent).
* A ``ConversionError``, an ``UnmappedValue`` (either policy) or a ``QuarantineRecord`` quarantines
  the record for that map; the reason names the error, the field and the ``.fmap`` line.

How ``expect`` compares:

* ``expect Map { F = v }``: the i-th ``expect`` of a map compares with the i-th record the map
  produced (in feeding order). Only the listed fields are compared; ``F = missing`` asserts the
  field is absent. Numbers compare by value (``12.50 == 12.5``); a date or datetime also equals its
  ISO text. ``ref(Contacts, "p1")`` and ``owner("a@b")`` in ``expect`` equal the ``Ref``/``Owner``
  placeholders the transform produced (lookup keys compare as text, as at load time); differences
  are printed in .fmap syntax: ``Contacts.Who_Id: expected ref(Contacts, "p1"), got ref(Contacts,
  "p2")``.
* ``expect Map none``: the map produced no record (not routed there, skipped or quarantined).
* ``expect quarantine ["text"]``: at least one record was quarantined (with a reason containing
  the text, case-insensitively). A quarantine that no ``expect quarantine`` accounts for fails the
  test.

Outputs are the transform's records: ``split`` and ``attach`` happen later, in the executor.

Coverage (over all tests of the file): maps that never received a record, routing branches never
taken, and value-map entries (including ``_``) that no value hit; value maps are instrumented by
wrapping their generated functions and matching the values they were called with.
"""

from __future__ import annotations

import linecache
import types
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from compiler.check import check_path, check_text
from compiler.codegen.generate import valuemap_functions
from compiler.compile import CompileResult, compile_checked
from dsl import ir
from dsl.diagnostics import render_text
from runtime import MISSING, ConversionError, Owner, QuarantineRecord, Ref, UnmappedValue, locate
from runtime.ops import ref_key

__all__ = [
    "compile_text", "load_module", "run_file", "run_tests", "render_value", "TestReport",
    "TestResult", "Coverage",
]


# ---------------------------------------------------------------------------------- compile, load


def compile_text(text: str, display: str = "<input>", base_dir: Path | None = None) -> CompileResult:
    """Check and compile .fmap text in memory (no cache)."""
    return compile_checked(check_text(text, display, base_dir), display)


def load_module(source: str, filename: str, name: str = "fmap_generated") -> types.ModuleType:
    """Execute generated module text as a fresh module whose ``__file__`` is ``filename``.

    The text is registered in ``linecache`` so tracebacks show generated lines, and
    ``runtime.locate`` maps frames of this module to .fmap lines."""
    mod = types.ModuleType(name)
    mod.__file__ = filename
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), mod.__dict__)  # noqa: S102 - our own generated code
    return mod


# ---------------------------------------------------------------------------------- values


def _fmap_string(s: str) -> str:
    out = []
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\0":
            out.append("\\0")
        elif not ch.isprintable():
            out.append(f"\\u{{{ord(ch):X}}}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def render_value(v: Any) -> str:
    """A value as .fmap text: ``"Male"``, ``null``, ``missing``, ``12.50``, ``@2024-01-31``,
    ``ref(Contacts | Leads, "p1")``, ``owner("a@b.com")``, ``[1, 2]``, ``{a: 1}``."""
    if v is MISSING:
        return "missing"
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, str):
        return _fmap_string(v)
    if isinstance(v, (int, Decimal)):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, datetime):
        return "@" + v.isoformat()
    if isinstance(v, date):
        return "@" + v.isoformat()
    if isinstance(v, Ref):
        key = "null" if v.key is None else _fmap_string(v.key)
        return f"ref({' | '.join(v.maps)}, {key})"
    if isinstance(v, Owner):
        return f"owner({render_value(v.email)})"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(render_value(i) for i in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {render_value(x)}" for k, x in v.items()) + "}"
    return repr(v)


def _expected(e, params: dict[str, Any]) -> Any:
    """The value an ``expect`` field writes (literals, lists, params, ref(), owner(), -n)."""
    k = e.kind
    if k in ("string", "int", "decimal", "bool"):
        return e.value
    if k == "null":
        return None
    if k == "missing":
        return MISSING
    if k == "date":
        return date.fromisoformat(e.value)
    if k == "datetime":
        return datetime.fromisoformat(e.value.replace("Z", "+00:00"))
    if k == "list":
        return [_expected(i, params) for i in e.items]
    if k == "param":
        return params.get(e.name, MISSING)
    if k == "ref":
        return Ref(tuple(t.value for t in e.targets), ref_key(_expected(e.key, params)))
    if k == "owner":
        return Owner(_expected(e.email, params))
    if k == "unary" and e.op == "-":
        v = _expected(e.operand, params)
        if isinstance(v, (int, Decimal)) and not isinstance(v, bool):
            return -v
    raise ValueError(f"`expect` values must be literals, lists, params, ref() or owner() "
                     f"(line {e.span.line})")


def _same(expected: Any, got: Any) -> bool:
    if expected is MISSING or got is MISSING:
        return expected is got
    if isinstance(expected, bool) or isinstance(got, bool):
        return type(expected) is type(got) and expected == got
    if isinstance(expected, (list, tuple)) and isinstance(got, (list, tuple)):
        return len(expected) == len(got) and all(_same(a, b) for a, b in zip(expected, got,
                                                                                 strict=True))
    if isinstance(expected, str) and isinstance(got, (date, datetime)):
        return got.isoformat() == expected
    if isinstance(expected, Owner) and isinstance(got, Owner):
        return _same(expected.email, got.email)
    try:
        return bool(expected == got)
    except TypeError:  # pragma: no cover - exotic values
        return False


# ---------------------------------------------------------------------------------- results


@dataclass
class TestResult:
    name: str
    line: int
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


@dataclass
class Coverage:
    maps: list[str] = field(default_factory=list)  # maps that never received a record
    branches: list[str] = field(default_factory=list)  # routing branches never taken
    valuemap_entries: list[str] = field(default_factory=list)  # value-map entries never hit

    @property
    def complete(self) -> bool:
        return not (self.maps or self.branches or self.valuemap_entries)


@dataclass
class TestReport:
    path: str
    results: list[TestResult] = field(default_factory=list)
    coverage: Coverage = field(default_factory=Coverage)
    compile_error: str | None = None

    @property
    def ok(self) -> bool:
        return self.compile_error is None and all(r.ok for r in self.results)

    def render(self) -> str:
        if self.compile_error is not None:
            return self.compile_error
        lines: list[str] = []
        for r in self.results:
            lines.append(f"{'PASS' if r.ok else 'FAIL'} {_fmap_string(r.name)} (line {r.line})")
            lines.extend(f"  {f}" for f in r.failures)
        passed = sum(r.ok for r in self.results)
        failed = len(self.results) - passed
        lines.append(f"{len(self.results)} test(s): {passed} passed, {failed} failed")
        c = self.coverage
        if c.complete:
            lines.append("coverage: every map, routing branch and value-map entry was exercised")
        else:
            lines.append("coverage: not exercised by any test")
            for title, items in (("maps", c.maps), ("routing branches", c.branches),
                                 ("value-map entries", c.valuemap_entries)):
                if items:
                    lines.append(f"  {title}:")
                    lines.extend(f"    {i}" for i in items)
        return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------- running


@dataclass
class _Outcome:
    records: dict[str, list[dict]] = field(default_factory=dict)  # map name -> output records
    keys: dict[str, list[str | None]] = field(default_factory=dict)
    quarantined: list[str] = field(default_factory=list)


class _VmProbe:
    """Records the values a generated value-map function was called with."""

    def __init__(self, fn) -> None:
        self.fn = fn
        self.seen: list[Any] = []

    def __call__(self, value, P):
        self.seen.append(value)
        return self.fn(value, P)


class _VmTableProbe(dict):
    """A value map's dict constant recording the text values transforms look up inline."""

    def __init__(self, table: dict, seen: list[Any]) -> None:
        super().__init__(table)
        self.seen = seen

    def get(self, value, default=None):
        self.seen.append(value)
        return super().get(value, default)

    def __contains__(self, value) -> bool:
        self.seen.append(value)
        return super().__contains__(value)


def _key_matches(value: Any, key: Any) -> bool:
    if isinstance(value, bool) or isinstance(key, bool):
        return type(value) is type(key) and value == key
    try:
        return value == key
    except TypeError:  # pragma: no cover
        return False


class _Runner:
    def __init__(self, module: ir.Module, mod: types.ModuleType,
                 valuemaps: dict[str, ir.ValueMapDecl]) -> None:
        self.ir = module
        self.mod = mod
        self.plan = mod.PLAN
        self.params = dict(self.plan.params)
        self.map_names = {s.name for s in self.plan.steps}
        self.fed: set[str] = set()
        self.branches: set[str] = set()  # step names whose route (or otherwise) was taken
        self.probes: dict[str, _VmProbe] = {}
        for vm_name, fname in valuemap_functions(module, valuemaps).items():
            probe = _VmProbe(getattr(mod, fname))
            setattr(mod, fname, probe)  # transforms look value maps up as module globals
            if isinstance(getattr(mod, fname.upper(), None), dict):  # and inline, text values
                setattr(mod, fname.upper(), _VmTableProbe(getattr(mod, fname.upper()), probe.seen))
            self.probes[vm_name] = probe
        self.valuemaps = valuemaps

    # -- feeding
    def _walk(self, records: list, parents: tuple, path: tuple[str, ...]):
        """(record, parents) for every element reached by following ``path`` down."""
        if not path:
            for r in records:
                if isinstance(r, dict):
                    yield r, parents
            return
        head, rest = path[0], path[1:]
        for r in records:
            if not isinstance(r, dict):
                continue
            children = r.get(head)
            if isinstance(children, list):
                yield from self._walk(children, (*parents, r), rest)

    def _reason(self, exc: BaseException) -> str:
        where = locate(exc, self.mod)
        at = ""
        if where:
            line, rule = where[0]
            at = f" at {rule} (line {line})"
            if len(where) > 1 and where[-1] != where[0]:
                at += f", {where[-1][1]} (line {where[-1][0]})"
        if isinstance(exc, UnmappedValue):
            kind = "quarantined" if exc.quarantine else "conversion error"
            return f"{kind}: {exc}{at}"
        if isinstance(exc, QuarantineRecord):
            return f"quarantined: {exc.reason}{at}"
        return f"conversion error: {exc}{at}"

    def feed(self, given: ir.Given, out: _Outcome) -> None:
        root = given.source.root
        prefix = tuple(p.value for p in given.source.parts[1:])
        synthetic = tuple({} for _ in prefix)
        steps = [s for s in self.plan.steps
                 if s.source == root and s.path[:len(prefix)] == prefix]
        maps = [s for s in steps if s.kind == "map"]
        merges = [s for s in steps if s.kind == "merge"]
        # routing groups among the maps at each path
        by_path: dict[tuple[str, ...], list] = {}
        for s in maps:
            by_path.setdefault(s.path, []).append(s)
        for path, group in by_path.items():
            for rec, parents in self._walk(list(given.records), synthetic, path[len(prefix):]):
                for s in self._routed(group, rec, parents, out):
                    self._run_map(s, rec, parents, out)
        for s in merges:
            groups: dict[str | None, list] = {}
            for rec, parents in self._walk(list(given.records), synthetic, s.path[len(prefix):]):
                self.fed.add(s.name)
                try:
                    k = s.key(rec, parents, self.params)
                except (ConversionError, UnmappedValue, QuarantineRecord) as exc:
                    out.quarantined.append(f"{s.name}: {self._reason(exc)}")
                    continue
                groups.setdefault(k, []).append(rec)
            for k, recs in groups.items():
                try:
                    result = s.transform(recs, self.params)
                except (ConversionError, UnmappedValue, QuarantineRecord) as exc:
                    out.quarantined.append(f"{s.name}: {self._reason(exc)}")
                    continue
                self._merge_into(s, k, result, out)

    def _routed(self, group: list, rec: dict, parents: tuple, out: _Outcome) -> list:
        chosen = []
        routed: dict[str, list] = {}
        for s in group:
            if s.route_group is None:
                chosen.append(s)
            else:
                routed.setdefault(s.route_group, []).append(s)
        for members in routed.values():
            hits = []
            for s in members:
                if s.route is None:
                    continue
                try:
                    if s.route(rec, parents, self.params):
                        hits.append(s)
                except (ConversionError, UnmappedValue, QuarantineRecord) as exc:
                    out.quarantined.append(f"{s.name} where: {self._reason(exc)}")
                    return []
            if not hits:
                hits = [s for s in members if s.otherwise]
            self.branches.update(s.name for s in hits)
            chosen.extend(hits)
        return sorted(chosen, key=lambda s: self.plan.steps.index(s))

    def _run_map(self, s, rec: dict, parents: tuple, out: _Outcome) -> None:
        self.fed.add(s.name)
        try:
            for rule in s.skips:
                if rule.predicate(rec, parents, self.params):
                    return
            key = s.key(rec, parents, self.params) if s.key is not None else None
            result = s.transform(rec, parents, self.params)
        except (ConversionError, UnmappedValue, QuarantineRecord) as exc:
            out.quarantined.append(f"{s.name}: {self._reason(exc)}")
            return
        out.records.setdefault(s.name, []).append(result)
        out.keys.setdefault(s.name, []).append(key)

    def _merge_into(self, s, key, result: dict, out: _Outcome) -> None:
        parent_map = s.target if s.target in self.map_names else None
        if parent_map is not None:
            for k, rec in zip(out.keys.get(parent_map, []), out.records.get(parent_map, []),
                              strict=True):
                if k == key:
                    rec.update(result)
                    return
        out.records.setdefault(s.target, []).append(result)
        out.keys.setdefault(s.target, []).append(key)

    # -- checking
    def run(self, test: ir.TestDecl) -> TestResult:
        res = TestResult(test.name, test.span.line)
        out = _Outcome()
        for g in test.givens:
            self.feed(g, out)
        seen: dict[str, int] = {}
        wants_quarantine = False
        for e in test.expects:
            if e.mode == "quarantine":
                wants_quarantine = True
                text = (e.message or "").lower()
                if not any(text in q.lower() for q in out.quarantined):
                    what = f" with a reason containing {_fmap_string(e.message)}" if e.message else ""
                    got = "; ".join(out.quarantined) or "nothing was quarantined"
                    res.failures.append(f"expected a quarantined record{what}; got: {got}")
                continue
            name = e.target.value if e.target is not None else ""
            records = out.records.get(name, [])
            if e.mode == "none":
                if records:
                    res.failures.append(f"{name}: expected none, got {len(records)} record(s): "
                                        + "; ".join(render_value(r) for r in records))
                continue
            i = seen.get(name, 0)
            seen[name] = i + 1
            if i >= len(records):
                why = f" (quarantined: {'; '.join(out.quarantined)})" if out.quarantined else ""
                res.failures.append(f"{name}: expected a record, got {len(records)}{why}"
                                    if i == 0 else
                                    f"{name}: expected record #{i + 1}, got only {len(records)}")
                continue
            got_rec = records[i]
            label = name if len(records) == 1 else f"{name}[{i}]"
            for f in e.fields:
                try:
                    want = _expected(f.value, self.params)
                except ValueError as exc:
                    res.failures.append(f"{label}.{f.target.value}: {exc}")
                    continue
                got = got_rec.get(f.target.value, MISSING)
                if not _same(want, got):
                    res.failures.append(f"{label}.{f.target.value}: expected {render_value(want)}, "
                                        f"got {render_value(got)}")
        if out.quarantined and not wants_quarantine:
            res.failures.extend(f"unexpected quarantine: {q}" for q in out.quarantined)
        return res

    def coverage(self) -> Coverage:
        c = Coverage()
        for s in self.plan.steps:
            if s.name not in self.fed:
                c.maps.append(f"{s.name} (line {s.line})")
        for s in self.plan.steps:
            if s.route_group is None or s.name in self.branches:
                continue
            what = "otherwise" if s.otherwise else "where"
            c.branches.append(f"{s.route_group}: {what} -> {s.name} (line {s.line})")
        for name in sorted(self.probes):
            seen = self.probes[name].seen
            vm = self.valuemaps[name]
            keys_all = []
            for entry in vm.entries:
                keys = [_expected(k, self.params) for k in entry.keys]
                keys_all.extend(keys)
                if not any(_key_matches(v, k) for v in seen for k in keys):
                    shown = ", ".join(render_value(k) for k in keys)
                    c.valuemap_entries.append(f"{name}: {shown} (line {entry.span.line})")
            null_key = any(k is None for k in keys_all)
            unmatched = [v for v in seen if v is not MISSING and (null_key or v is not None)
                         and not any(_key_matches(v, k) for k in keys_all)]
            if not unmatched:
                line = vm.unmapped.span.line if vm.unmapped else vm.span.line
                c.valuemap_entries.append(f"{name}: _ (line {line})")
        return c


def run_tests(result: CompileResult, display: str) -> TestReport:
    """Run the test blocks of a compiled program (``result`` from ``compile_checked``)."""
    report = TestReport(display)
    if not result.ok:
        text = render_text(result.diagnostics, result.check.program.sources, color=False)
        report.compile_error = (text + "\n" if text else "") + f"{display}: does not compile\n"
        return report
    module = result.check.program.module
    mod = load_module(result.python, f"{display}.py", name="fmap_test_module")
    runner = _Runner(module, mod, result.check.program.valuemaps())
    for t in module.decls(ir.TestDecl):
        try:
            report.results.append(runner.run(t))
        except Exception as exc:  # noqa: BLE001 - a broken test must not hide the others
            res = TestResult(t.name, t.span.line)
            where = locate(exc, mod)
            at = f" at {where[-1][1]} (line {where[-1][0]})" if where else ""
            res.failures.append(f"error: {type(exc).__name__}: {exc}{at}")
            report.results.append(res)
    report.coverage = runner.coverage()
    return report


def run_file(path: str | Path, display: str | None = None) -> TestReport:
    """Compile ``path`` in memory and run its tests."""
    display = display or str(path)
    check = check_path(path, display)
    return run_tests(compile_checked(check, display), display)
