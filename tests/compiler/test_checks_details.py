"""The schema checks beyond one example each: scoping of paths (nested arrays, parent, group),
type inference, exemptions (mode update, merges, owner fields, split/truncate), routing forms."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.check import check_path
from tests.compiler.checks_cases import CLINIC_YAML, HEADER, SF_HEADER


def check(tmp_path: Path, text: str, files: dict[str, str] | None = None):
    for rel, body in {"schemas/clinic.yaml": CLINIC_YAML, **(files or {})}.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(body, encoding="utf-8")
    f = tmp_path / "m.fmap"
    f.write_text(text, encoding="utf-8")
    return check_path(f, "m.fmap", schema_dir=None)


def found(r, code: str | None = None) -> list[str]:
    """`line:col code` of the diagnostics (of one code)."""
    return [f"{d.span.line}:{d.span.column} {d.code}" for d in r.diagnostics
            if code is None or d.code == code]


CONTACT = "map patients -> Contacts {\n  key id\n  Last_Name = last_name\n}\n"


# ------------------------------------------------------------------------------ source scoping


def test_nested_array_paths_resolve_against_the_item_object(tmp_path):
    r = check(tmp_path, HEADER + CONTACT + "map patients.appointments[] -> Events {\n"
              "  key id\n  Event_Title = status\n  Start_DateTime = start\n"
              "  End_DateTime = finish\n  Who_Id = ref(Contacts, parent.idd)\n}\n")
    assert found(r) == ["12:18 FM304", "13:33 FM304"]
    assert "patients.appointments" in r.diagnostics[0].message
    assert r.diagnostics[1].hint == "did you mean `id`?"


def test_unknown_nested_array(tmp_path):
    r = check(tmp_path, HEADER + CONTACT + "map patients.apointments[] -> Events { key id }\n")
    assert found(r, "FM303") == ["8:14 FM303"]
    assert r.diagnostics[0].hint == "did you mean `appointments`?"
    r = check(tmp_path, HEADER + CONTACT + "map patients.email[] -> Events { key id }\n")
    assert "not an array of records" in next(d.message for d in r.diagnostics
                                             if d.code == "FM303")


def test_group_in_merges_resolves_against_the_child_object(tmp_path):
    ext = "extend Contacts {\n  Visits integer\n  Last_Visit datetime\n}\n"
    r = check(tmp_path, HEADER + ext + CONTACT
              + "merge patients.appointments[] -> Contacts by parent.id {\n"
                "  Visits = count(group.id)\n  Last_Visit = max(group.strat)\n}\n")
    assert found(r) == ["14:26 FM304"]
    assert r.diagnostics[0].hint == "did you mean `start`?"


def test_merge_by_parent_resolves_against_the_parent(tmp_path):
    ext = "extend Contacts {\n  Visits integer\n}\n"
    r = check(tmp_path, HEADER + ext + CONTACT
              + "merge patients.appointments[] -> Contacts by parent.pid {\n"
                "  Visits = count(group.id)\n}\n")
    assert found(r) == ["11:53 FM304"]


def test_paths_into_arrays_with_an_index(tmp_path):
    r = check(tmp_path, HEADER + "map patients -> Contacts {\n  key id\n  Last_Name = last_name\n"
              "  Description = appointments[0].status ++ appointments[0].nope\n}\n")
    assert found(r) == ["7:59 FM304"]


# ---------------------------------------------------------------------------------- types


@pytest.mark.parametrize("value, bad", [
    ("dob", True),  # date into boolean
    ("vip", False),
    ("not vip", False),
    ("status == \"Active\"", False),
    ("count(appointments)", True),  # integer into boolean
    ("\"yes\"", False),
    ("\"perhaps\"", True),  # a text literal that is no boolean
    ("42", True),
    ("[true]", True),  # a list
    ("coalesce(vip, false)", False),
    ("first(appointments)", False),  # any: no error
    ("unknown_fn_is_FM203_not_this", False),
])
def test_types_into_boolean(tmp_path, value, bad):
    r = check(tmp_path, HEADER + "map patients -> Contacts {\n  key id\n  Last_Name = last_name\n"
              f"  Email_Opt_Out = {value}\n}}\n")
    assert bool(found(r, "FM307")) is bad, [str(d) for d in r.diagnostics]


@pytest.mark.parametrize("field, value, bad", [
    ("Date_of_Birth", "42", True),  # a number into a date
    ("Date_of_Birth", "dob", False),
    ("Date_of_Birth", "created_at", False),  # datetime into date: the date part
    ("Date_of_Birth", "@2024-01-31", False),
    ("Date_of_Birth", "\"2024-01-31\"", False),
    ("Date_of_Birth", "\"31/01/2024\"", True),
    ("Date_of_Birth", "vip", True),
    ("Description", "split(last_name, \" \")", True),  # a list into text
    ("Description", "join(split(last_name, \" \"), \"-\")", False),
    ("Description", "dob", False),
    ("Description", "ref(Contacts, id)", True),
    ("Account_Name", "last_name", False),  # raw ids into a lookup: allowed
    ("Account_Name", "dob", True),
    ("Owner", "ref(Contacts, id)", True),
    ("Mailing_City", "if vip then \"VIP\" else null", False),
])
def test_types_other_fields(tmp_path, field, value, bad):
    r = check(tmp_path, HEADER + "owners by email else reject\n"
              "map patients -> Contacts {\n  key id\n  Last_Name = last_name\n"
              f"  {field} = {value}\n}}\n")
    assert bool(found(r, "FM307")) is bad, [str(d) for d in r.diagnostics]


def test_type_error_points_at_the_value(tmp_path):
    r = check(tmp_path, HEADER + "map patients -> Contacts {\n  key id\n  Last_Name = last_name\n"
              "  Date_of_Birth = 42\n}\n")
    (d,) = [d for d in r.diagnostics if d.code == "FM307"]
    assert (d.span.line, d.span.column) == (7, 19)
    assert d.message == "`Date_of_Birth` is a date field but the value is an integer"
    assert "date(" in d.hint


def test_params_and_value_maps_are_typed(tmp_path):
    r = check(tmp_path, HEADER + "param since = @2020-01-01\n"
              'valuemap yn {\n  "Active" -> true\n  _ -> false\n}\n'
              "map patients -> Contacts {\n  key id\n  Last_Name = last_name\n"
              "  Email_Opt_Out = status | yn\n  Description = $since\n  Mailing_City = $since\n"
              "  Date_of_Birth = status | yn\n}\n")
    assert found(r, "FM307") == ["15:19 FM307"]


# ----------------------------------------------------------------------- required and owners


def test_required_per_routing_branch(tmp_path):
    r = check(tmp_path, HEADER + 'map patients -> Leads where status == "Prospect" {\n'
              "  key id\n  First_Name = first_name\n}\n"
              "map patients -> Contacts otherwise {\n  key id\n  Last_Name = last_name\n}\n")
    assert found(r, "FM308") == ["4:17 FM308"]
    assert "routing branch `where`" in r.diagnostics[0].message


def test_required_exemptions(tmp_path):
    r = check(tmp_path, HEADER + CONTACT
              + "map patients -> Contacts as touch {\n  key id\n  mode update\n"
                "  Description = \"updated\"\n}\n"
                "merge patients.appointments[] -> Contacts by parent.id {\n"
                "  Description = \"merged\"\n}\n")
    assert found(r, "FM308") == []


def test_owner_field_is_not_required_here(tmp_path):
    snap = ('{"objects": {"Contacts": {"fields": {"fields": [\n'
            '  {"api_name": "Owner", "data_type": "ownerlookup", "system_mandatory": true}]}}}}')
    hdr = HEADER.replace("target zoho", 'target zoho "zoho.json"')
    r = check(tmp_path, hdr + CONTACT, {"zoho.json": snap})
    assert [d.code for d in r.diagnostics] == ["FM316"]  # not FM308
    r = check(tmp_path, hdr + "owners by email else reject\n" + CONTACT, {"zoho.json": snap})
    assert r.diagnostics == []


# ------------------------------------------------------------------ picklists, lengths, values


def test_picklist_literal_and_if_branches(tmp_path):
    r = check(tmp_path, HEADER + "map patients -> Contacts {\n  key id\n  Last_Name = last_name\n"
              '  Lead_Source = if vip then "Partner" else "Walk-in"\n}\n')
    assert found(r, "FM309") == ["7:44 FM309"]


def test_value_map_entry_is_where_the_picklist_error_points(tmp_path):
    r = check(tmp_path, HEADER + 'valuemap src {\n  "Active" -> "Partner"\n  "Prospect" -> "Web"\n'
              '  _ -> "Chat"\n}\n'
              "map patients -> Contacts {\n  key id\n  Last_Name = last_name\n"
              "  Lead_Source = status | src\n}\n")
    assert found(r, "FM309") == ["6:17 FM309"]
    d = next(d for d in r.diagnostics if d.code == "FM309")
    assert d.related and d.related[0].span.line == 12


def test_value_map_keys_and_exhaustiveness(tmp_path):
    r = check(tmp_path, HEADER + 'valuemap g {\n  "M" -> "Mr."\n  "X" -> "Dr."\n  _ -> null\n}\n'
              "map patients -> Contacts {\n  key id\n  Last_Name = last_name\n"
              "  Salutation = gender | trim | g\n}\n")
    assert found(r) == ["6:3 FM311", "12:32 FM310"]
    assert '"F", "U"' in r.diagnostics[1].message


def test_literal_length_and_truncate_and_split(tmp_path):
    long = "x" * 50
    r = check(tmp_path, HEADER + "map patients -> Contacts {\n  key id\n  Last_Name = last_name\n"
              f'  First_Name = "{long}"\n  Department = first_name | trim\n'
              f'  Title = first_name | truncate(30)\n}}\n')
    assert found(r, "FM312") == ["7:16 FM312", "8:16 FM312"]
    assert "50 characters" in r.diagnostics[0].message
    r = check(tmp_path, HEADER + CONTACT + "map patients -> Notes {\n  key id\n"
              "  Note_Content = notes ++ notes\n  Parent_Id = ref(Contacts, id)\n"
              "  Note_Title = notes\n  split Note_Title max 120\n}\n")
    assert found(r, "FM312") == []


def test_readonly_and_zoho_audit_hint(tmp_path):
    r = check(tmp_path, HEADER + "map patients -> Contacts {\n  key id\n  Last_Name = last_name\n"
              "  Full_Name = first_name\n  Created_Time = created_at\n}\n")
    assert found(r, "FM313") == ["7:3 FM313", "8:3 FM313"]
    assert "custom field" in r.diagnostics[1].hint


def test_salesforce_audit_fields_allowed_by_option(tmp_path):
    body = ("map patients -> Contact {\n  key id\n  LastName = last_name\n"
            "  CreatedDate = created_at\n}\n")
    assert found(check(tmp_path, SF_HEADER + body), "FM313") == ["7:3 FM313"]
    opt = SF_HEADER.replace("salesforce", "salesforce(audit_fields=true)")
    assert found(check(tmp_path, opt + body)) == []


def test_ref_alternatives_each_checked(tmp_path):
    r = check(tmp_path, HEADER + CONTACT + 'map patients -> Leads where status == "Prospect" {\n'
              "  key id\n  Last_Name = last_name\n}\n"
              "map patients.appointments[] -> Events {\n  key id\n  Event_Title = \"Visit\"\n"
              "  Start_DateTime = start\n  End_DateTime = start\n"
              "  Who_Id = ref(Contacts | Leads, parent.id)\n}\n")
    assert found(r, "FM314") == ["17:27 FM314"]


def test_naming_for_created_modules(tmp_path):
    r = check(tmp_path, SF_HEADER + "create object Patient_Details {\n  NHS_Number__c text(10)\n}\n")
    assert found(r, "FM315") == ["4:15 FM315"]
    assert r.diagnostics[0].hint.startswith("write `Patient_Details__c`")
    pd = 'migration "x"\nsource clinic\ntarget pipedrive\ncreate module Extra {\n  A text(5)\n}\n'
    r = check(tmp_path, pd)
    assert found(r, "FM315") == ["4:15 FM315"]
    assert "no custom objects" in r.diagnostics[0].message


def test_attachment_limit_above_the_dialect(tmp_path):
    r = check(tmp_path, HEADER + CONTACT + "map documents -> Attachments {\n  key id\n"
              "  File_Name = path\n  Parent_Id = ref(Contacts, patient_id)\n"
              "  attach path limit 200MB oversize skip\n}\n")
    assert found(r, "FM317") == ["12:3 FM317"]
    assert "100 MB" in r.diagnostics[0].message


def test_pipedrive_has_no_documented_limit(tmp_path):
    r = check(tmp_path, 'migration "x"\nsource clinic\ntarget pipedrive\n'
              "map patients -> Person {\n  key id\n  name = last_name\n}\n"
              "map documents -> File {\n  key id\n  person_id = ref(Person, patient_id)\n"
              "  file = path\n  attach path\n}\n")
    assert found(r, "FM317") == []


# ---------------------------------------------------------------------------------- routing


@pytest.mark.parametrize("a, b, overlap", [
    ('status == "Active"', 'status == "Active"', True),
    ('status in ["Active", "Prospect"]', '"Prospect" == status', True),
    ('status == "Active"', 'status == "Prospect"', False),
    ('status == "Active" and vip', 'status == "Active" and not vip', True),  # decided by status
    ('status == "Active" and gender == "M"', 'status == "Active" and gender == "F"', False),
    ('status == "Active" or status == "Referral"', 'status in ["Referral"]', True),
    ('vip', 'not vip', False),  # not decidable syntactically: no warning
])
def test_overlap(tmp_path, a, b, overlap):
    r = check(tmp_path, HEADER + f"map patients -> Contacts where {a} {{\n  key id\n"
              "  Last_Name = last_name\n}\n"
              f"map patients -> Contacts as c2 where {b} {{\n  key id\n  Last_Name = last_name\n}}\n"
              "map patients -> Leads otherwise {\n  key id\n  Last_Name = last_name\n}\n")
    assert bool(found(r, "FM318")) is overlap


def test_unrouted_lists_missing_codes_and_otherwise_silences(tmp_path):
    two = (HEADER + 'map patients -> Contacts where status in ["Active", "Deceased"] {\n  key id\n'
           "  Last_Name = last_name\n}\n"
           'map patients -> Leads where status == "Prospect" {\n  key id\n'
           "  Last_Name = last_name\n}\n")
    r = check(tmp_path, two)
    (d,) = [d for d in r.diagnostics if d.code == "FM319"]
    assert d.message.endswith('`status` "Referral" match no `where` and are not loaded')
    other = two + "map patients -> Leads as rest otherwise {\n  key id\n  Last_Name = last_name\n}\n"
    assert found(check(tmp_path, other), "FM319") == []


def test_fm401_reported_by_check(tmp_path):
    r = check(tmp_path, HEADER + "map clinics -> Accounts {\n  key ref(Contacts, id)\n"
              "  Account_Name = name\n}\n"
              "map patients -> Contacts {\n  key ref(Accounts, clinic_id)\n"
              "  Last_Name = last_name\n}\n")
    assert [d.code for d in r.diagnostics] == ["FM401"]
    assert r.diagnostics[0].related
