"""One parse per language construct, each with a JSON snapshot of its IR (spans written L:C-L:C),
plus precedence and literal-distinctness assertions that do not depend on snapshots."""

from __future__ import annotations

from decimal import Decimal

import pytest

from dsl import ir
from dsl.parser import parse_text

M = "map src -> T {{\n  key id\n  X = {}\n}}\n"  # one expression inside a map

CONSTRUCTS: dict[str, str] = {
    # ---- header
    "migration": 'migration "AeronaClinic -> Zoho CRM"\n',
    "source": "source aeronaclinic\n",
    "source_with_schema": 'source aeronaclinic "mappings/schemas/aeronaclinic_api.yaml"\n',
    "target": "target zoho\n",
    "target_options": 'target zoho(edition="professional", users=10) "snapshots/org.json"\n',
    "import": 'import "common.fmap"\n',
    "param_string": 'param fallback_owner = "pm@example.com"\n',
    "param_expr": "param cutoff = @2020-01-01\nparam n = -3 + 4\n",
    "owners_fallback": "owners by email else $fallback_owner\n",
    "owners_reject": "owners by email else reject\n",
    "owners_string": 'owners by email else "admin@example.com"\n',
    # ---- value maps
    "valuemap_default": 'valuemap gender { "M" -> "Male"  "F" -> "Female"  _ -> "Unknown" }\n',
    "valuemap_error": 'valuemap s { "A" -> "Active"  _ -> error }\n',
    "valuemap_passthrough": 'valuemap s { "A" -> "Active"  _ -> passthrough }\n',
    "valuemap_quarantine": 'valuemap s { "DNA" -> "No Show"  _ -> quarantine }\n',
    "valuemap_multi_key": 'valuemap s {\n  "F", "f", "female" -> "Female"\n  1, 2.5, true, null -> "x"\n  _ -> error\n}\n',
    "valuemap_no_policy": 'valuemap s { "A" -> "B" }\n',
    # ---- custom schema
    "create_module": (
        'create module Patient_Details "Patient Details" {\n'
        '  NHS_Number text(10) unique sensitive "NHS Number"\n'
        "  Allergies  textarea\n"
        "  Contact    lookup(Contacts) required\n"
        '  Status     picklist values ["Active", "Inactive"]\n'
        "  Amount     currency(16, 2)\n"
        "  Ext        text(50) external_id required unique\n"
        "}\n"
    ),
    "create_object": "create object Insurance__c {\n  Policy text(20)\n}\n",
    "extend": "extend Contacts { Source_System_ID text(50) external_id }\n",
    "field_types": "create module M {\n" + "".join(
        f"  F_{t} {t}\n" for t in ("text", "textarea", "email", "phone", "url", "integer", "decimal",
                                   "percent", "boolean", "date", "datetime", "owner", "file")
    ) + "}\n",
    # ---- maps
    "map_minimal": "map clinics -> Accounts {\n  key id\n  Account_Name = name\n}\n",
    "map_as_where": 'map patients -> Leads as leads where status in ["Prospect"] {\n  key id\n}\n',
    "map_otherwise": "map patients -> Contacts otherwise {\n  key id\n}\n",
    "map_quoted_target": 'map a -> B {\n  key id\n  "Phone (mobile)" = mobile\n}\n',
    "fan_out": ("map patients -> Contacts {\n  key id\n}\n"
                "map patients -> Patient_Details {\n  key id\n  Contact = ref(Contacts, id)\n}\n"),
    "nested_array": ("map patients.appointments[] -> Events {\n  key id\n"
                     "  Who_Id = ref(Contacts, parent.id)\n}\n"),
    "nested_two_levels": ("map patients.plans[].items[] -> Products {\n  key id\n"
                          "  Patient = parent.parent.id\n  Plan = parent.name\n}\n"),
    "merge_group": ("merge patients.invoices[] -> Contacts by parent.id {\n"
                    "  Outstanding_Balance = sum(group.balance)\n}\n"),
    "notes_above_map": "# clinics\n# become accounts\nmap clinics -> Accounts {\n  key id\n}\n",
    # ---- statements
    "split": 'map n -> Notes {\n  key id\n  Body = body\n  split Body max 32000 prefix "({n}/{total}) "\n}\n',
    "split_no_prefix": "map n -> Notes {\n  key id\n  Body = body\n  split Body max 100\n}\n",
    "attach": "map d -> Attachments {\n  key id\n  attach path as file_name limit 25MB oversize quarantine\n}\n",
    "attach_size_units": "map d -> A {\n  key id\n  attach p limit 1.5 GB\n  attach q limit 10KB oversize skip\n  attach r\n}\n",
    "skip_because": 'map p -> C {\n  key id\n  skip when status == "Deleted" because "deleted in source"\n}\n',
    "skip_plain": "map p -> C {\n  key id\n  skip when deleted\n}\n",
    "sensitive": "map p -> C {\n  key id\n  A = a\n  B = b\n  sensitive A, B\n}\n",
    "mode": "map p -> C {\n  key id\n  mode upsert\n}\n",
    # ---- not migrated
    "not_migrated_name": 'not migrated workflows "Rebuild in Blueprint"\n',
    "not_migrated_dotted": 'not migrated patients.portal_password "not needed"\n',
    "not_migrated_string": 'not migrated "portal logins" "patients re-register"\n',
    # ---- tests
    "test_record": ('test "gender" {\n  given patients {id: "1", gender: "M"}\n'
                    '  expect Contacts { Gender = "Male" }\n}\n'),
    "test_records_nested": (
        'test "nested" {\n'
        '  given patients [{id: "1", appts: [{id: "a", n: -1, d: 2.50}], addr: {city: "Leeds"}}, '
        '{id: "2", gone: missing, nil: null, empty: "", "odd key": true, day: @2024-01-02}]\n'
        "  expect Contacts none\n"
        '  expect quarantine "bad gender"\n'
        "  expect quarantine\n}\n"
    ),
    # ---- expressions: literals
    "lit_string": M.format('"text with \\"quotes\\" and \\\\ and \\n"'),
    "lit_string_unicode_escape": M.format('"\\u{1F600} \\u{2028}"'),
    "lit_empty_string": M.format('""'),
    "lit_int": M.format("42"),
    "lit_negative_int": M.format("-42"),
    "lit_decimal": M.format("3.50"),
    "lit_negative_decimal": M.format("-0.01"),
    "lit_bool": M.format("true or false"),
    "lit_null": M.format("null"),
    "lit_missing": M.format("missing"),
    "lit_date": M.format("@2024-02-29"),
    "lit_datetime": M.format("@2024-01-01T10:00:00Z"),
    "lit_datetime_offset": M.format("@2024-01-01T10:00:00.123+01:00"),
    "lit_datetime_minutes": M.format("@2024-01-01T10:00"),
    "list": M.format('[1, "a", null, [2]]'),
    "list_empty": M.format("[]"),
    # ---- expressions: names and calls
    "path_dotted": M.format("address.postcode"),
    "path_index": M.format("phones[0].number"),
    "backtick_name": M.format("`First Name` ++ `key`"),
    "param_ref": M.format("$fallback_owner"),
    "call": M.format("coalesce(a, b, \"\")"),
    "call_kwargs": M.format('datetime(start, "%d/%m/%Y %H:%M", tz="Europe/London")'),
    "call_no_args": M.format("today()"),
    "pipe_chain": M.format("first_name | trim | title"),
    "pipe_args_kwargs": M.format('dob | date("%d/%m/%Y") | format_date("%Y") | truncate(4, ellipsis="")'),
    "valuemap_application": M.format("gender | gender_map"),
    "coalesce_op": M.format('last_name ?? first_name ?? "Unknown"'),
    "arithmetic": M.format("a + b - c * d / e % f"),
    "concat": M.format('first ++ " " ++ last'),
    "comparisons": M.format("a == 1 and b != 2 and c < 3 and d <= 4 and e > 5 and f >= 6"),
    "boolean": M.format("not a and b or c"),
    "in_not_in": M.format('a in ["x", "y"] and b not in [1]'),
    "if_then_else": M.format('if age(dob) >= 18 then "Adult" else "Child"'),
    "if_nested": M.format("if a then if b then 1 else 2 else 3"),
    "ref": M.format("ref(Accounts, clinic_id)"),
    "ref_alternatives": M.format("ref(Contacts | Leads | people, parent.id)"),
    "owner": M.format("owner(practitioner.email)"),
    "parens": M.format("(a ++ b) | trim"),
    "unary_minus": M.format("-x | round"),
}


@pytest.mark.parametrize("src", list(CONSTRUCTS.values()), ids=list(CONSTRUCTS))
def test_construct_ir(src, snapshot_json, compact):
    r = parse_text(src, "c.fmap")
    assert r.diagnostics == [], [str(d) for d in r.diagnostics]
    assert r.module.body, "nothing parsed"
    assert compact(r.module.model_dump(mode="json")) == snapshot_json


def test_full_example_ir(snapshot_json, compact, fixture_files):
    path = next(p for p in fixture_files if p.name == "example.fmap")
    r = parse_text(path.read_text(), "example.fmap")
    assert r.diagnostics == []
    assert compact(r.module.model_dump(mode="json")) == snapshot_json


# ---------------------------------------------------------------------------- precedence


def expr(text: str):
    r = parse_text(M.format(text))
    assert r.diagnostics == [], [str(d) for d in r.diagnostics]
    return r.module.maps[0].body[1].value


def shape(e) -> str:
    """A compact S-expression of an expression tree (paths by name, literals by value)."""
    k = e.kind
    if k == "binop":
        return f"({e.op} {shape(e.left)} {shape(e.right)})"
    if k == "unary":
        return f"({e.op} {shape(e.operand)})"
    if k == "pipe":
        args = "".join(" " + shape(a) for a in e.args)
        return f"(| {shape(e.value)} {e.func.value}{args})"
    if k == "if":
        return f"(if {shape(e.cond)} {shape(e.then)} {shape(e.otherwise)})"
    if k == "path":
        return e.dotted()
    if k == "call":
        return f"{e.func.value}(" + " ".join(shape(a) for a in e.args) + ")"
    if k == "list":
        return "[" + " ".join(shape(i) for i in e.items) + "]"
    if k in ("null", "missing"):
        return k
    return repr(e.value)


PRECEDENCE = {
    "not_over_eq_under_and": ("not a == b and c", "(and (not (== a b)) c)"),
    "and_over_or": ("a or b and c", "(or a (and b c))"),
    "or_over_qq": ("a ?? b or c", "(?? a (or b c))"),
    "pipe_tighter_than_concat": ("a | trim ++ b | lower", "(++ (| a trim) (| b lower))"),
    "neg_of_pipe": ("-x | abs", "(- (| x abs))"),
    "neg_literal_folded": ("-3 + 4", "(+ -3 4)"),
    "mul_over_add": ("a + b * c - d", "(- (+ a (* b c)) d)"),
    "left_assoc_sub": ("a - b - c", "(- (- a b) c)"),
    "left_assoc_div": ("a / b % c", "(% (/ a b) c)"),
    "concat_under_add": ("a ++ b + c", "(++ a (+ b c))"),
    "comparison_under_concat": ('a ++ b == "x"', "(== (++ a b) 'x')"),
    "in_is_comparison": ("a in [1] and b not in [2]", "(and (in a [1]) (not in b [2]))"),
    "not_not": ("not not a", "(not (not a))"),
    "not_binds_comparison": ("not a in [1]", "(not (in a [1]))"),
    "parens_override": ("(a ++ b) | trim", "(| (++ a b) trim)"),
    "pipe_args": ('a | f(b ++ c, "d")', "(| a f (++ b c) 'd')"),
    "qq_right_chain": ("a ?? b ?? c", "(?? (?? a b) c)"),
    "if_in_operand": ("(if a then b else c) ++ d", "(++ (if a b c) d)"),
    "if_else_takes_rest": ("if a then b else c ++ d", "(if a b (++ c d))"),
    "neg_in_product": ("-a * b", "(* (- a) b)"),
}


@pytest.mark.parametrize("text,expected", list(PRECEDENCE.values()), ids=list(PRECEDENCE))
def test_precedence(text, expected):
    assert shape(expr(text)) == expected


def test_missing_null_and_empty_string_are_distinct():
    m, n, s = expr("missing"), expr("null"), expr('""')
    assert (type(m), type(n), type(s)) == (ir.MissingLit, ir.NullLit, ir.StringLit)
    assert s.value == ""
    dumps = [x.model_dump(exclude={"span"}) for x in (m, n, s)]
    assert len({repr(d) for d in dumps}) == 3
    # and in test data: missing drops the key, null is None, "" stays ""
    r = parse_text('test "t" {\n  given p {a: missing, b: null, c: ""}\n}\n')
    assert r.module.first(ir.TestDecl).givens[0].records == [{"b": None, "c": ""}]


def test_numbers_keep_their_type():
    assert expr("3.50").value == Decimal("3.50") and isinstance(expr("3.50"), ir.DecimalLit)
    assert expr("-7").value == -7 and isinstance(expr("-7"), ir.IntLit)
    assert expr("-0.5").value == Decimal("-0.5")


def test_pipe_records_parentheses():
    assert expr("a | trim").has_parens is False
    assert expr("a | trim()").has_parens is True


def test_spans_cover_the_construct():
    src = 'map a -> B {\n  key id\n  X = first | trim ++ "!"\n}\n'
    e = parse_text(src).module.maps[0].body[1]
    assert (e.span.line, e.span.column, e.span.end_line, e.span.end_column) == (3, 3, 3, 26)
    assert (e.value.span.column, e.value.span.end_column) == (7, 26)
    assert (e.value.left.span.column, e.value.left.span.end_column) == (7, 19)
