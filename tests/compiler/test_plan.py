"""The load planner: order, cycles, schema setup, the mapping table, its renderings and `fmap plan`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from compiler.check import check_text
from compiler.mapping_table import md_cell
from compiler.plan import PHASES, LoadPlan, build_plan, render_markdown, render_text
from fmap.cli import app

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "plan" / "clinic.fmap"

HEADER = 'migration "t"\nsource src\ntarget zoho\n'


def plan_of(body: str, *, header: str = HEADER, clean: bool = True):
    r = check_text(header + body, "t.fmap")
    assert r.ok, [str(d) for d in r.diagnostics]
    plan, diags = build_plan(r.program.module)
    if clean:
        assert diags == []
    return plan, diags


def order(plan: LoadPlan) -> list[str]:
    return [s.name for s in plan.steps]


def step(plan: LoadPlan, name: str):
    return next(s for s in plan.steps if s.name == name)


def phase(plan: LoadPlan, name: str):
    return next(p for p in plan.phases if p.name == name)


# ----------------------------------------------------------------------------------- ordering


def test_topological_order_with_ties_broken_by_name():
    plan, _ = plan_of("""
map visits -> Zeta { key id  C = ref(Alpha, a) }
map b -> Beta { key id }
map a -> Alpha { key id  B = ref(Beta, b) }
map c -> Gamma { key id }
map d -> Delta { key id  A = ref(Alpha, a)  G = ref(Gamma, g) }
""")
    # Beta and Gamma are ready first (by name); Alpha needs Beta; Delta and Zeta need Alpha.
    assert order(plan) == ["Beta", "Alpha", "Gamma", "Delta", "Zeta"]
    assert step(plan, "Delta").depends_on == ["Alpha", "Gamma"]
    assert step(plan, "Beta").depends_on == []
    assert all(s.deferred_fields == [] for s in plan.steps)


def test_order_is_independent_of_declaration_order():
    body = [
        "map a -> Alpha { key id  B = ref(Beta, b) }\n",
        "map b -> Beta { key id }\n",
        "map c -> Gamma { key id  A = ref(Alpha, a) }\n",
        "map e -> Epsilon { key id }\n",
    ]
    first, _ = plan_of("".join(body))
    second, _ = plan_of("".join(reversed(body)))
    assert order(first) == order(second) == ["Beta", "Alpha", "Epsilon", "Gamma"]


def test_refs_in_key_where_skip_and_alternatives_are_dependencies():
    plan, _ = plan_of("""
map x -> Xs { key id }
map y -> Ys { key id }
map w -> Ws { key id }
map p -> Aa where ref(Xs, x) != null { key ref(Ys, y)  skip when ref(Ws, w) == null }
map p -> Zz otherwise { key id }
map q -> Bb { key id  L = ref(Aa | Zz, p) }
""")
    assert step(plan, "Aa").depends_on == ["Ws", "Xs", "Ys"]
    assert step(plan, "Bb").depends_on == ["Aa", "Zz"]
    o = order(plan)
    assert o.index("Bb") > max(o.index("Aa"), o.index("Zz"))
    assert o.index("Aa") > max(o.index(n) for n in ("Ws", "Xs", "Ys"))


def test_fan_out_maps_are_separate_steps_in_dependency_order():
    plan, _ = plan_of("""
map patients -> Patient_Details { key id  Contact = ref(Contacts, id) }
map patients -> Contacts { key id  Last_Name = last_name }
map patients -> Tasks as intake_tasks { key id  Who = ref(Contacts, id) }
""")
    assert order(plan) == ["Contacts", "intake_tasks", "Patient_Details"]
    assert step(plan, "intake_tasks").target == "Tasks"
    assert {s.source for s in plan.steps} == {"patients"}
    rows = {r.target: r for r in plan.mapping_table}
    assert rows["Contacts"].cardinality == "1:1 (fan-out: also loads Patient_Details, Tasks)"
    assert rows["Patient_Details"].cardinality == "1:1 (fan-out: also loads Contacts, Tasks)"


def test_nested_array_maps_follow_their_parent():
    plan, _ = plan_of("""
map patients.treatment_plans[].items[] -> Plan_Items { key id  Plan = ref(Treatment_Plans, parent.id) }
map patients.treatment_plans[] -> Treatment_Plans { key id  Patient = ref(Contacts, parent.id) }
map patients -> Contacts { key id }
""")
    assert order(plan) == ["Contacts", "Treatment_Plans", "Plan_Items"]
    assert step(plan, "Plan_Items").source == "patients.treatment_plans.items"
    rows = {r.target: r for r in plan.mapping_table}
    assert rows["Plan_Items"].source == "patients.treatment_plans[].items[]"
    assert rows["Plan_Items"].cardinality == "1:many"
    assert rows["Treatment_Plans"].cardinality == "1:many"
    assert rows["Contacts"].cardinality == "1:1"


def test_merges_come_after_their_parent_in_the_merge_phase():
    plan, _ = plan_of("""
merge patients.invoices[] -> Persons by parent.id { Outstanding_Balance = sum(group.balance) }
map patients -> Persons { key id  Org = ref(Organizations, clinic_id) }
map clinics -> Organizations { key id }
map zzz -> Zed { key id }
merge payments -> people by patient_id { Last_Payment = max(group.paid_on) }
map patients -> Persons as people { key id }
""")
    o = order(plan)
    assert o == ["Organizations", "people", "Persons", "Zed", "patients.invoices->Persons",
                 "payments->people"]
    m = step(plan, "patients.invoices->Persons")
    assert m.kind == "merge" and m.depends_on == ["Persons"] and m.target == "Persons"
    assert step(plan, "payments->people").target == "Persons"  # the object, not the map name
    assert phase(plan, "load").steps == ["Organizations", "people", "Persons", "Zed"]
    assert phase(plan, "merge").steps == ["patients.invoices->Persons", "payments->people"]
    rows = [r for r in plan.mapping_table if r.cardinality.startswith("many:1")]
    assert [(r.source, r.target) for r in rows] == [("patients.invoices[]", "Persons"),
                                                    ("payments", "Persons")]
    assert rows[0].cardinality == "many:1 (merged into Persons by parent.id)"


# ------------------------------------------------------------------------------------- cycles

CYCLE = """
map patients -> Contacts {
  key id
  Last_Name        = last_name
  Primary_Referral = ref(Referrals, referral_id)
}
map referrals -> Referrals {
  key id
  Contact = ref(Contacts, patient_id)
}
map notes -> Notes { key id  Parent = ref(Referrals, referral_id) }
"""


def test_two_map_cycle_is_deferred():
    plan, diags = plan_of(CYCLE)
    assert diags == []
    assert order(plan) == ["Contacts", "Referrals", "Notes"]
    contacts = step(plan, "Contacts")
    assert contacts.deferred_fields == ["Primary_Referral"]
    assert contacts.depends_on == []
    assert step(plan, "Referrals").depends_on == ["Contacts"]
    assert step(plan, "Referrals").deferred_fields == []
    deferred = phase(plan, "deferred updates")
    assert deferred.steps == ["Contacts"]
    assert "Contacts.Primary_Referral" in deferred.description


def test_cycle_prefers_the_assignment_over_a_key_ref():
    # Contacts -> Referrals only through `key`: the cycle must break at Referrals.Contact,
    # even though Contacts sorts first.
    plan, diags = plan_of("""
map patients -> Contacts { key ref(Referrals, referral_id)  Last_Name = last_name }
map referrals -> Referrals { key id  Contact = ref(Contacts, patient_id) }
""")
    assert diags == []
    assert order(plan) == ["Referrals", "Contacts"]
    assert step(plan, "Referrals").deferred_fields == ["Contact"]
    assert step(plan, "Contacts").deferred_fields == []


def test_three_map_cycle_defers_one_edge_and_keeps_the_rest():
    plan, _ = plan_of("""
map a -> Alpha { key id  B = ref(Beta, b) }
map b -> Beta { key id  G = ref(Gamma, g) }
map c -> Gamma { key id  A = ref(Alpha, a) }
""")
    assert order(plan) == ["Alpha", "Gamma", "Beta"]
    assert [s.deferred_fields for s in plan.steps] == [["B"], [], []]


def test_self_reference_is_always_deferred():
    plan, diags = plan_of("""
map patients -> Contacts {
  key id
  Last_Name   = last_name
  Referred_By = ref(Contacts, referrer_patient_id)
  Account     = ref(Accounts, clinic_id)
}
map clinics -> Accounts { key id }
""")
    assert diags == []
    assert order(plan) == ["Accounts", "Contacts"]
    c = step(plan, "Contacts")
    assert c.deferred_fields == ["Referred_By"]
    assert c.depends_on == ["Accounts"]  # not itself
    assert phase(plan, "deferred updates").steps == ["Contacts"]


def test_undeferrable_cycle_is_fm401_with_spans():
    plan, diags = plan_of("""
map patients -> Contacts where ref(Referrals, referral_id) != null {
  key id
}
map patients -> Leads otherwise { key id }
map referrals -> Referrals {
  key ref(Contacts, patient_id)
}
""", clean=False)
    assert [d.code for d in diags] == ["FM401"]
    d = diags[0]
    assert d.severity.value == "error"
    assert "`Contacts`" in d.message and "`Referrals`" in d.message
    assert d.span is not None and d.span.file == "t.fmap"
    related = {(r.span.line, r.message) for r in d.related}
    assert (5, "`Contacts` refers to `Referrals` in `where`") in related
    assert (10, "`Referrals` refers to `Contacts` in `key`") in related
    # the plan still lists every step once
    assert sorted(order(plan)) == ["Contacts", "Leads", "Referrals"]


def test_self_reference_in_key_is_fm401():
    _, diags = plan_of("map patients -> Contacts { key ref(Contacts, id) }\n", clean=False)
    assert [d.code for d in diags] == ["FM401"]
    assert "refers to itself in `key`" in diags[0].message
    assert diags[0].span.line == 4


# ------------------------------------------------------------------------------ schema setup


def test_schema_changes_listed_one_per_module_and_field():
    plan, _ = plan_of("""
create module Patient_Details "Patient Details" {
  NHS_Number  text(10) unique sensitive "NHS Number"
  Status      picklist values ["Active", "Inactive"]
}
extend Contacts { Source_System_ID text(50) external_id }
map patients -> Contacts { key id }
""")
    got = [(c.action, c.object, c.field, c.type) for c in plan.schema_changes]
    assert got == [
        ("create_module", "Patient_Details", None, None),
        ("create_field", "Patient_Details", "NHS_Number", "text(10)"),
        ("create_field", "Patient_Details", "Status", "picklist"),
        ("create_field", "Contacts", "Source_System_ID", "text(50)"),
    ]
    assert plan.schema_changes[0].details == {"kind": "module", "label": "Patient Details"}
    assert plan.schema_changes[1].details == {"label": "NHS Number", "unique": True,
                                              "sensitive": True}
    assert plan.schema_changes[2].details == {"values": ["Active", "Inactive"]}
    assert plan.schema_changes[0].line == 5 and plan.schema_changes[3].line == 9
    assert phase(plan, "schema setup").steps == [
        "Patient_Details", "Patient_Details.NHS_Number", "Patient_Details.Status",
        "Contacts.Source_System_ID"]


def test_all_four_phases_always_present():
    plan, _ = plan_of("map a -> Alpha { key id }\n")
    assert [p.name for p in plan.phases] == list(PHASES)
    assert [p.steps for p in plan.phases] == [[], ["Alpha"], [], []]


# ----------------------------------------------------------------------------- mapping table


def test_mapping_table_rows_cardinality_and_notes():
    plan, _ = plan_of("""
# Prospects without appointments
# become Leads.
map patients -> Leads where status == "Prospect" { key id }
map patients -> Contacts otherwise { key id }
map patients -> Patient_Details { key id }
map notes -> Notes { key id  Body = text  split Body max 32000 }
not migrated workflows "Rebuild in Blueprint"
""")
    rows = [(r.source, r.target, r.cardinality, r.notes) for r in plan.mapping_table]
    assert rows == [
        ("patients", "Leads",
         '1:1 (routed: where status == "Prospect"; fan-out: also loads Patient_Details)',
         "Prospects without appointments become Leads."),
        ("patients", "Contacts", "1:1 (routed: otherwise; fan-out: also loads Patient_Details)",
         ""),
        ("patients", "Patient_Details", "1:1 (fan-out: also loads Leads or Contacts)", ""),
        ("notes", "Notes", "1:many (split Body into parts of at most 32000 characters)", ""),
        ("workflows", "-", "not migrated", "Rebuild in Blueprint"),
    ]
    assert [r.line for r in plan.mapping_table] == [7, 8, 9, 10, 11]
    assert plan.not_migrated == [("workflows", "Rebuild in Blueprint")]


def test_routing_alone_is_not_fan_out():
    plan, _ = plan_of("""
map patients -> Leads where status == "Prospect" { key id }
map patients -> Contacts otherwise { key id }
""")
    assert [r.cardinality for r in plan.mapping_table] == [
        '1:1 (routed: where status == "Prospect")', "1:1 (routed: otherwise)"]


def test_markdown_escapes_pipes():
    assert md_cell("a | b") == "a \\| b"
    assert md_cell("two\nlines") == "two lines"
    assert md_cell("") == " "
    plan, _ = plan_of("""
# Name | trimmed
map patients -> Contacts { key id  Last_Name = last_name | trim }
not migrated "a|b" "reason | with pipe"
""")
    md = render_markdown(plan)
    assert "| Name \\| trimmed |" in md
    assert "| a\\|b | reason \\| with pipe |" in md
    for line in md.splitlines():
        if line.startswith("|"):  # every table row has the same number of unescaped cells
            cells = line.replace("\\|", "").count("|")
            assert cells in (3, 5, 7, 8), line


# --------------------------------------------------------------------------- realistic file


@pytest.fixture(scope="module")
def clinic():
    r = check_text(FIXTURE.read_text(encoding="utf-8"), "clinic.fmap")
    assert r.ok, [str(d) for d in r.diagnostics]
    plan, diags = build_plan(r.program.module)
    assert diags == []
    return plan


def test_clinic_plan_order(clinic):
    assert order(clinic) == ["Accounts", "Contacts", "Leads", "Events", "Notes",
                             "Patient_Details", "Referrals", "patients.invoices->Contacts"]
    assert step(clinic, "Contacts").deferred_fields == ["Primary_Referral", "Referred_By"]
    assert len(clinic.schema_changes) == 8


def test_clinic_markdown_snapshot(clinic, snapshot):
    assert render_markdown(clinic) == snapshot


def test_clinic_text_render(clinic):
    text = render_text(clinic)
    assert text.startswith("Load plan: AeronaClinic -> Zoho CRM (aeronaclinic -> zoho)\n")
    lines = text.splitlines()
    heads = [ln for ln in lines if ln.startswith("Phase ")]
    assert heads == ["Phase 1: schema setup (8 step(s))", "Phase 2: load (7 step(s))",
                     "Phase 3: merge (1 step(s))", "Phase 4: deferred updates (1 step(s))"]
    assert any("create field Contacts.Source_System_ID text(50) [external_id]" in ln
               for ln in lines)
    assert any("patients.appointments[] -> Events  (after Contacts, Leads)" in ln for ln in lines)
    assert "    Contacts: Primary_Referral, Referred_By" in lines
    assert "Object mapping" in lines


def test_plan_json_round_trips(clinic):
    again = LoadPlan.model_validate_json(clinic.model_dump_json())
    assert again == clinic


# ------------------------------------------------------------------------------------- CLI

runner = CliRunner()


def test_cli_text_default():
    r = runner.invoke(app, ["plan", str(FIXTURE)])
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("Load plan: AeronaClinic -> Zoho CRM")
    assert "Phase 4: deferred updates" in r.stdout


def test_cli_markdown_and_json(clinic, tmp_path):
    r = runner.invoke(app, ["plan", str(FIXTURE), "--format", "markdown"])
    assert r.exit_code == 0
    assert r.stdout == render_markdown(clinic)
    r = runner.invoke(app, ["plan", str(FIXTURE), "-f", "json"])
    assert r.exit_code == 0
    data = json.loads(r.stdout)
    assert [s["name"] for s in data["steps"]] == order(clinic)
    assert [p["name"] for p in data["phases"]] == list(PHASES)
    out = tmp_path / "plan.md"
    r = runner.invoke(app, ["plan", str(FIXTURE), "-f", "markdown", "-o", str(out)])
    assert r.exit_code == 0
    assert out.read_text(encoding="utf-8") == render_markdown(clinic)
    assert "# Migration plan" not in r.stdout


def test_cli_check_errors_exit_1(tmp_path):
    bad = tmp_path / "bad.fmap"
    bad.write_text(HEADER + "map a -> Alpha { key id  X = ref(Nowhere, b) }\n", encoding="utf-8")
    r = runner.invoke(app, ["plan", str(bad)])
    assert r.exit_code == 1
    assert "error[FM225]" in r.stdout and "no plan" in r.stdout


def test_cli_fm401_exit_1(tmp_path):
    bad = tmp_path / "cycle.fmap"
    bad.write_text(HEADER + "map a -> Alpha { key ref(Beta, b) }\n"
                            "map b -> Beta { key ref(Alpha, a) }\n", encoding="utf-8")
    r = runner.invoke(app, ["plan", str(bad), "-f", "json"])
    assert r.exit_code == 1
    assert "error[FM401]" in r.stdout
    assert "= note:" in r.stdout  # related spans rendered


def test_cli_usage_errors_exit_2():
    r = runner.invoke(app, ["plan", str(FIXTURE), "--format", "yaml"])
    assert r.exit_code == 2


# ---------------------------------------------------------------------- random graphs (seeded)


@pytest.mark.parametrize("seed", range(40))
def test_random_graphs_order_respects_every_non_deferred_lookup(seed):
    import random

    rnd = random.Random(seed)
    names = [f"M{i}" for i in range(rnd.randint(2, 7))]
    body, meta = "", {}
    for i, nm in enumerate(names):
        key_ref = rnd.choice(names) if rnd.random() < 0.15 else None
        refs = [rnd.choice(names) for _ in range(rnd.randint(0, 3))]
        stmts = [f"key ref({key_ref}, k)" if key_ref else "key id"]
        stmts += [f"F{j} = ref({t}, x{j})" for j, t in enumerate(refs)]
        body += f"map src{i} -> {nm} {{ {'  '.join(stmts)} }}\n"
        meta[nm] = (key_ref, refs)
    plan, diags = plan_of(body, clean=False)
    assert sorted(order(plan)) == sorted(names)
    assert build_plan(check_text(HEADER + body, "t.fmap").program.module)[0] == plan
    if diags:
        assert {d.code for d in diags} == {"FM401"} and any(k for k, _ in meta.values())
        return
    pos = {n: i for i, n in enumerate(order(plan))}
    for s in plan.steps:
        key_ref, refs = meta[s.name]
        assert all(pos[d] < pos[s.name] for d in s.depends_on)
        for j, t in enumerate(refs):
            assert f"F{j}" in s.deferred_fields or t in s.depends_on
        if key_ref:
            assert key_ref in s.depends_on and key_ref != s.name
