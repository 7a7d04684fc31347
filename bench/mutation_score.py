"""Mutation score of the compile-time checks: how many realistic mistakes `fmap check` catches.

Takes a valid mapping (default: tests/fixtures/checks/aerona_zoho_contacts.fmap, AeronaClinic API ->
Zoho CRM, which checks clean), applies seeded mutations of the kinds consultants actually make, and
counts a mutation as caught when `fmap check` reports a diagnostic on the line the mutation
touched (for a dropped required assignment: the map's line). Every mutation is built to be
detectable from the schemas (a misspelt name is never another valid name), so the target is 100%.

Mutation kinds: misspelt source field, misspelt target field, misspelt source or target object,
dropped required assignment, wrong picklist value (value-map output or literal), misspelt
value-map key, swapped `ref()` target, wrong-type literal, over-long literal.

    python bench/mutation_score.py                 # 240 mutations, seed 7
    python bench/mutation_score.py -n 500 --seed 3 --json
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from compiler.check import check_text  # noqa: E402
from compiler.checks._scope import (  # noqa: E402
    contexts,
    is_create_path,
    literal_outputs,
    map_targets,
    resolve_path,
)
from dsl import ir  # noqa: E402
from dsl.walk import map_exprs, walk  # noqa: E402

__all__ = ["Mutant", "Report", "mutants", "score", "FIXTURE"]

FIXTURE = ROOT / "tests" / "fixtures" / "checks" / "aerona_zoho_contacts.fmap"
KINDS = ("source_field", "target_field", "source_object", "target_object", "drop_required",
         "picklist_value", "valuemap_key", "ref_target", "wrong_type", "long_literal")
_KEYWORDS = {"map", "merge", "key", "where", "otherwise", "and", "or", "not", "in", "if", "then",
             "else", "ref", "owner", "true", "false", "null", "missing", "as", "by", "mode",
             "split", "attach", "skip", "when", "sensitive", "limit", "max", "prefix", "group",
             "parent", "source", "target", "param", "valuemap", "extend", "create", "module",
             "object", "test", "given", "expect", "none", "error", "quarantine", "passthrough"}


@dataclass
class Mutant:
    kind: str
    line: int  # where the diagnostic must be reported
    description: str
    text: str = field(repr=False)
    diagnostics: list = field(default_factory=list, repr=False)  # what `fmap check` reported


@dataclass
class Result:
    kind: str
    line: int
    description: str
    caught: bool
    found: list[str]  # "line:col CODE" of what was reported


@dataclass
class Report:
    total: int
    caught: int
    by_kind: dict[str, list[int]]  # kind -> [caught, total]
    misses: list[Result]
    seconds: float

    @property
    def score(self) -> float:
        return self.caught / self.total if self.total else 1.0


# ------------------------------------------------------------------------------------- editing


def _replace(text: str, span, new: str) -> str:
    lines = text.split("\n")
    i = span.line - 1
    line = lines[i]
    end = span.end_column - 1 if span.end_line == span.line else len(line)
    lines[i] = line[: span.column - 1] + new + line[end:]
    return "\n".join(lines)


def _blank_line(text: str, line_no: int) -> str:
    lines = text.split("\n")
    lines[line_no - 1] = ""
    return "\n".join(lines)


def _misspell(rng: random.Random, name: str, avoid: set[str]) -> str | None:
    for _ in range(40):
        chars = list(name)
        op = rng.randrange(4)
        i = rng.randrange(len(chars))
        if op == 0 and len(chars) > 2:
            del chars[i]
        elif op == 1 and len(chars) > 1:
            j = min(i + 1, len(chars) - 1) if i + 1 < len(chars) else i - 1
            chars[i], chars[j] = chars[j], chars[i]
        elif op == 2:
            chars.insert(i, chars[i])
        else:
            c = chars[i]
            pool = "aeiou" if c.lower() in "aeiou" else "bcdfghklmnprstvz"
            chars[i] = rng.choice([p for p in pool if p != c.lower()] or ["x"])
            if c.isupper():
                chars[i] = chars[i].upper()
        cand = "".join(chars)
        if (cand != name and cand not in avoid and cand.lower() not in _KEYWORDS
                and (cand[0].isalpha() or cand[0] == "_") and cand.replace("_", "a").isalnum()):
            return cand
    return None


# ----------------------------------------------------------------------------------- mutations


def mutants(text: str, count: int, seed: int, base_dir: Path) -> list[Mutant]:
    """``count`` seeded mutants of ``text`` (kinds in turn, sites and variants at random), each
    checked with the schema checks (a mutant that does not parse is replaced by another)."""
    base = check_text(text, FIXTURE.name, base_dir=base_dir, schemas=True)
    if not base.ok or base.diagnostics:
        raise SystemExit("the base mapping must check clean:\n"
                         + "\n".join(str(d) for d in base.diagnostics))
    prog, s = base.program, base.schemas
    sites = _sites(prog, s)
    rng = random.Random(seed)
    kinds = [k for k in KINDS if sites[k]]
    out: list[Mutant] = []
    attempts = 0
    while len(out) < count and attempts < count * 20:
        attempts += 1
        kind = kinds[len(out) % len(kinds)]
        m = rng.choice(sites[kind])(rng, text)
        if m is None:
            continue
        r = check_text(m.text, FIXTURE.name, base_dir=base_dir, schemas=True)
        if not r.program.syntax_ok:
            continue  # a mutation that breaks the syntax is not a schema mutation
        m.diagnostics = r.diagnostics
        out.append(m)
    return out


def _sites(prog, s) -> dict[str, list]:
    m = prog.module
    sites: dict[str, list] = {k: [] for k in KINDS}
    src_names = {f.api_name for o in s.source.objects for f in o.fields} | set(s.source.object_names())
    src_names |= {o.split(".")[-1] for o in s.source.object_names()}
    tgt_names = {f.api_name for o in s.target.objects for f in o.fields} | set(s.target.object_names())
    targets = map_targets(m)

    for om, ctx, obj in contexts(prog, s):
        # source fields
        for _stmt, expr in map_exprs(om):
            for node in walk(expr):
                if node.kind != "path" or ctx.scope is None:
                    continue
                r = resolve_path(s, ctx.scope, node)
                if r.error is not None:
                    continue
                for part in node.parts:
                    if isinstance(part, ir.Name) and part.value not in ("parent", "group"):
                        sites["source_field"].append(_misspell_site(
                            "source_field", part, src_names, f"source field `{part.value}`"))
        # source object / target object (map headers)
        if isinstance(om, ir.ObjectMap):
            for part in om.source.parts:
                sites["source_object"].append(_misspell_site(
                    "source_object", part, src_names, f"source object `{part.value}`"))
            sites["target_object"].append(_misspell_site(
                "target_object", om.target, tgt_names | set(targets), f"target `{om.target.value}`"))
        if obj is None:
            continue
        owner = s.dialect.owner_field_for(obj.api_name)
        for a in om.assignments:
            f = obj.field(a.target.value)
            sites["target_field"].append(_misspell_site(
                "target_field", a.target, tgt_names, f"target field `{a.target.value}`"))
            if f is None:
                continue
            t = f.type.value
            if (isinstance(om, ir.ObjectMap) and is_create_path(om) and f.required
                    and f.api_name != owner and a.span.line == a.span.end_line):
                sites["drop_required"].append(_drop_site(om, a))
            if f.picklist_values:
                for node, _value in literal_outputs(a.value, ctx):
                    if node.kind == "string":
                        sites["picklist_value"].append(_picklist_site(node, f))
            if t in ("date", "datetime", "boolean", "integer", "decimal", "currency", "lookup",
                     "text", "textarea", "email", "phone", "url"):
                sites["wrong_type"].append(_type_site(a, t))
            if f.max_length is not None and f.max_length <= 1000 and t in (
                    "text", "email", "phone", "url") and a.target.value not in {
                    st.target.value for st in om.stmts(ir.SplitStmt)}:
                sites["long_literal"].append(_long_site(a, f.max_length))
            if t == "lookup" and f.lookup_targets:
                for node in walk(a.value):
                    if node.kind == "ref":
                        wrong = sorted(n for n, o in targets.items() if o not in f.lookup_targets)
                        for t_name in node.targets:
                            sites["ref_target"].append(_ref_site(t_name, wrong))
    # value-map keys with a known source enum
    for om in [*m.maps, *m.merges]:
        for _stmt, expr in map_exprs(om):
            for node in walk(expr):
                if node.kind == "pipe" and node.func.value in prog.valuemaps():
                    vm = prog.valuemaps()[node.func.value]
                    for entry in vm.entries:
                        for k in entry.keys:
                            if k.kind == "string":
                                sites["valuemap_key"].append(_key_site(k))
    # dedupe sites by (kind, position)
    for k, lst in sites.items():
        seen, uniq = set(), []
        for site in lst:
            if site.key not in seen:
                seen.add(site.key)
                uniq.append(site)
        sites[k] = uniq
    return sites


class _Site:
    def __init__(self, key, fn):
        self.key = key
        self.fn = fn

    def __call__(self, rng, text):
        return self.fn(rng, text)


def _pos(node) -> tuple[int, int]:
    return node.span.line, node.span.column


def _misspell_site(kind: str, name: ir.Name, avoid: set[str], what: str) -> _Site:
    def make(rng, text):
        new = _misspell(rng, name.value, avoid)
        if new is None:
            return None
        return Mutant(kind, name.span.line, f"{what} -> `{new}`", _replace(text, name.span, new))
    return _Site((kind, _pos(name)), make)


def _drop_site(om, a: ir.Assign) -> _Site:
    def make(rng, text):
        return Mutant("drop_required", om.target.span.line,
                      f"drop `{a.target.value} = ...` (line {a.span.line}) from map `{om.name}`",
                      _blank_line(text, a.span.line))
    return _Site(("drop_required", _pos(a)), make)


def _picklist_site(node: ir.StringLit, f) -> _Site:
    allowed = set(f.picklist_values)

    def make(rng, text):
        choices = [node.value.rstrip(".") if node.value.endswith(".") else node.value + "s",
                   node.value.upper(), node.value.lower(), "No Show", node.value.replace(" ", "_")]
        choices = [c for c in choices if c not in allowed and c]
        if not choices:
            return None
        new = rng.choice(choices)
        return Mutant("picklist_value", node.span.line,
                      f"picklist value \"{node.value}\" -> \"{new}\" ({f.api_name})",
                      _replace(text, node.span, json.dumps(new)))
    return _Site(("picklist_value", _pos(node)), make)


def _key_site(k: ir.StringLit) -> _Site:
    def make(rng, text):
        new = _misspell(rng, k.value, set()) or k.value + "X"
        return Mutant("valuemap_key", k.span.line, f"value-map key \"{k.value}\" -> \"{new}\"",
                      _replace(text, k.span, json.dumps(new)))
    return _Site(("valuemap_key", _pos(k)), make)


_WRONG = {
    "date": ["42", "true", '"next tuesday"', '["a"]'],
    "datetime": ["42", "false", '"soon"', '["a"]'],
    "boolean": ["@2024-01-31", "12", '"perhaps"', '["a"]'],
    "integer": ["true", "@2024-01-31", '"many"'],
    "decimal": ["true", "@2024-01-31", '"lots"'],
    "currency": ["true", "@2024-01-31", '"free"'],
    "lookup": ["true", "@2024-01-31"],
    "text": ['["a", "b"]'],
    "textarea": ['["a", "b"]'],
    "email": ['["a@example.com"]'],
    "phone": ['["0123"]'],
    "url": ['["x"]'],
}


def _type_site(a: ir.Assign, t: str) -> _Site:
    def make(rng, text):
        new = rng.choice(_WRONG[t])
        return Mutant("wrong_type", a.value.span.line,
                      f"`{a.target.value}` ({t}) = {new}", _replace(text, _value_span(a), new))
    return _Site(("wrong_type", _pos(a)), make)


def _long_site(a: ir.Assign, limit: int) -> _Site:
    def make(rng, text):
        n = limit + rng.randint(1, 40)
        new = json.dumps("x" * n)
        return Mutant("long_literal", a.value.span.line,
                      f"`{a.target.value}` (max {limit}) = {n}-character literal",
                      _replace(text, _value_span(a), new))
    return _Site(("long_literal", _pos(a)), make)


def _ref_site(t_name: ir.Name, wrong: list[str]) -> _Site:
    def make(rng, text):
        if not wrong:
            return None
        new = rng.choice(wrong)
        return Mutant("ref_target", t_name.span.line, f"ref({t_name.value}, ...) -> ref({new}, ...)",
                      _replace(text, t_name.span, new))
    return _Site(("ref_target", _pos(t_name)), make)


def _value_span(a: ir.Assign):
    """The assignment's value span; a single line (the fixture writes one assignment per line)."""
    return a.value.span


# --------------------------------------------------------------------------------------- score


def score(count: int = 240, seed: int = 7, fixture: Path = FIXTURE) -> Report:
    started = time.perf_counter()
    text = fixture.read_text(encoding="utf-8")
    ms = mutants(text, count, seed, fixture.parent)
    by_kind: dict[str, list[int]] = {}
    misses: list[Result] = []
    caught = 0
    for mu in ms:
        found = [f"{d.span.line}:{d.span.column} {d.code}" for d in mu.diagnostics if d.span]
        hit = any(d.span is not None and d.span.line == mu.line for d in mu.diagnostics)
        tally = by_kind.setdefault(mu.kind, [0, 0])
        tally[1] += 1
        if hit:
            tally[0] += 1
            caught += 1
        else:
            misses.append(Result(mu.kind, mu.line, mu.description, False, found))
    return Report(len(ms), caught, by_kind, misses, time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--count", type=int, default=240)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--fixture", type=Path, default=FIXTURE)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    rep = score(args.count, args.seed, args.fixture)
    if args.json:
        print(json.dumps({"total": rep.total, "caught": rep.caught, "score": rep.score,
                          "by_kind": rep.by_kind, "misses": [asdict(m) for m in rep.misses],
                          "seconds": round(rep.seconds, 2)}, indent=2))
    else:
        print(f"mutation score: {rep.caught}/{rep.total} = {rep.score:.1%} caught at compile time "
              f"on the right line ({args.fixture.name}, seed {args.seed}, {rep.seconds:.1f}s)")
        for kind in KINDS:
            if kind in rep.by_kind:
                c, t = rep.by_kind[kind]
                print(f"  {kind:<15} {c:>4}/{t:<4}")
        for miss in rep.misses:
            print(f"MISSED {miss.kind} line {miss.line}: {miss.description}; reported: "
                  f"{', '.join(miss.found) or 'nothing'}")
    return 0 if rep.caught == rep.total else 1


if __name__ == "__main__":
    raise SystemExit(main())
