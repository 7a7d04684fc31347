"""`fmap schema infer`: a schema from sample files, and bad input as a message, not a traceback."""

from __future__ import annotations

from typer.testing import CliRunner

from fmap.cli import app
from runtime.schema.io import load_schema

runner = CliRunner()


def test_infers_objects_keys_types_and_enums(tmp_path):
    (tmp_path / "patients.csv").write_text(
        "id,status,dob,email\n"
        + "".join(f"{i},{'Active' if i % 2 else 'Inactive'},2020-01-{i % 28 + 1:02d},p{i}@x.org\n"
                  for i in range(40)),
        "utf-8",
    )
    out = tmp_path / "schema.yaml"
    r = runner.invoke(app, ["schema", "infer", str(tmp_path), "--system", "clinic", "-o", str(out)])
    assert r.exit_code == 0, r.output
    schema = load_schema(out)
    patients = schema.object("patients")
    assert patients is not None and patients.key == "id"
    assert patients.field("status").type.value == "picklist"
    assert patients.field("status").picklist_values == ["Active", "Inactive"]
    assert patients.field("dob").type.value == "date"
    assert patients.field("email").type.value == "email"


def test_missing_path_is_a_usage_error(tmp_path):
    r = runner.invoke(app, ["schema", "infer", str(tmp_path / "nope.csv")])
    assert r.exit_code == 2
    assert "no such file" in r.output
    assert "Traceback" not in r.output
