"""The required fields a map must fill have one definition (runtime.executor.run.required_fields),
so `fmap run` (which quarantines a record that leaves one empty while staging) and `fmap profile`
(which reports them as missing) name the same fields: read-only fields, owner fields and deferred
lookups are required by the target but never counted."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import ModuleType

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "operations2"))
import ops2fix  # noqa: E402

from runtime.destinations.base import DestinationCapabilities  # noqa: E402
from runtime.destinations.sandbox_store import SandboxStore  # noqa: E402
from runtime.executor import RunOptions, run_migration  # noqa: E402
from runtime.executor.run import required_fields  # noqa: E402
from runtime.operations.profile import profile_source  # noqa: E402
from runtime.plan import Plan, Step  # noqa: E402
from runtime.schema.io import schema_from_data  # noqa: E402
from runtime.sources import open_source  # noqa: E402
from runtime.state import StateStore  # noqa: E402

SCHEMA = schema_from_data({"system": "zoho", "kind": "target", "objects": [
    {"api_name": "Patients", "custom": True, "fields": [
        {"api_name": "Last_Name", "type": "text", "required": True},
        {"api_name": "Record_No", "type": "text", "required": True, "read_only": True},
        {"api_name": "Referrer", "type": "lookup", "lookup_targets": ["Patients"],
         "required": True},
        {"api_name": "Owner", "type": "owner", "required": True},
        {"api_name": "Note", "type": "text"},
    ]},
]})


def _transform(rec, parents, P):
    # every field assigned, the required-but-not-counted ones empty: a caller that counted any
    # of them would flag p2 too
    return {"Last_Name": rec["last_name"], "Record_No": None, "Referrer": None, "Owner": None,
            "Note": None}


PATIENTS = Step(name="Patients", kind="map", source="patients", path=(), target="Patients",
                transform=_transform, key=None, line=1, deferred_fields=("Referrer",),
                fields=("Last_Name", "Record_No", "Referrer", "Owner", "Note"))
PLAN = Plan(migration="required fields", source=None, target=None, target_options={}, params={},
            owners=None, steps=(PATIENTS,))


def _module() -> ModuleType:
    m = ModuleType("required_fields_plan")
    m.PLAN = PLAN
    m.FMAP_PATH = "required.fmap"
    return m


def _source(tmp_path: Path):
    d = tmp_path / "src"
    d.mkdir(exist_ok=True)
    (d / "patients.json").write_text(json.dumps([
        {"id": "p1", "last_name": ""},   # the one required field that counts, left empty
        {"id": "p2", "last_name": "Ng"},
    ]), "utf-8")
    return open_source(f"json:{d}")


def test_definition():
    assert required_fields(PLAN, SCHEMA) == {"Patients": ("Last_Name",)}
    assert required_fields(PLAN, None) == {}


def test_run_and_profile_flag_the_same_fields(tmp_path):
    source = _source(tmp_path)
    try:
        report = profile_source(_module(), source, tmp_path / "scratch", schema=SCHEMA)
    finally:
        source.close()
    profiled = {(m["map"], m["field"]) for m in report.missing_required}

    dest = SandboxStore(SCHEMA, ":memory:", users=ops2fix.users(),
                        capabilities=DestinationCapabilities(name="sandbox:t", batch_size=50))
    source = _source(tmp_path)
    try:
        with StateStore(tmp_path / "state.sqlite") as state:
            result = run_migration(_module(), source, dest, state, tmp_path / "stage",
                                   options=RunOptions())
            quarantined = list(state.quarantined(result.run_id))
    finally:
        source.close()
    staged = {(q["map"], q["field"].split(".", 1)[1]) for q in quarantined}

    assert [m["count"] for m in report.missing_required] == [1]
    assert [q["source_key"] for q in quarantined] == ["p1"]
    assert profiled == staged == {("Patients", "Last_Name")}
