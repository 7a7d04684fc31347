"""The record-name length of a new custom module is one capability per dialect, read by the
compiler's checks (through ``Dialect.custom_object_fields``) and by the dialect's emulator, so a
name ``fmap check`` passes is one the sandbox stores and a name it stores is one the check passes.
Zoho's emulator refused names over 120 while the checks allowed 255: a mapping passed ``fmap
check`` and then failed record by record at load time."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.check import check_path
from runtime.destinations.base import WriteItem
from runtime.dialects import get_dialect
from runtime.dialects.zoho import open_sandbox
from runtime.dialects.zoho.capabilities import CUSTOM_NAME_MAX_LENGTH
from tests.compiler.checks_cases import CLINIC_YAML, HEADER


def _check_name(tmp_path: Path, length: int) -> list[str]:
    (tmp_path / "schemas").mkdir(exist_ok=True)
    (tmp_path / "schemas" / "clinic.yaml").write_text(CLINIC_YAML, encoding="utf-8")
    mapping = tmp_path / "m.fmap"
    mapping.write_text(HEADER + 'create module Referrals "Referrals" {\n  Ref_Code text(20)\n}\n'
                       f'map patients -> Referrals {{\n  key id\n  Name = "{"n" * length}"\n}}\n',
                       encoding="utf-8")
    result = check_path(mapping, "m.fmap", schema_dir=None)
    return [f"{d.code} {d.message}" for d in result.diagnostics]


def test_zoho_limit_is_120():
    assert CUSTOM_NAME_MAX_LENGTH == 120
    assert get_dialect("zoho").custom_name_max_length == 120


def test_a_121_character_zoho_module_name_is_refused_at_check_time(tmp_path):
    assert _check_name(tmp_path, 120) == []
    (problem,) = _check_name(tmp_path, 121)
    assert problem.startswith("FM312") and "`Referrals.Name` holds at most 120" in problem


def test_the_zoho_sandbox_refuses_what_the_check_refuses(tmp_path):
    dest = open_sandbox(get_dialect("zoho").standard_schema(), tmp_path / "o.sqlite", None, {})
    try:
        dest.create_module("Referrals", "Referrals")
        ok, too_long = dest.create("Referrals", [
            WriteItem("r:1", "r:1", {"Name": "n" * 120}),
            WriteItem("r:2", "r:2", {"Name": "n" * 121})])
        assert ok.ok, ok.error
        assert not too_long.ok
        assert dest.schema().object("Referrals").field("Name").max_length == 120
    finally:
        dest.close()


@pytest.mark.parametrize("dialect", ["zoho", "salesforce", "freshsales", "pipedrive"])
def test_the_checks_record_name_field_carries_the_capability(dialect):
    d = get_dialect(dialect)
    names = [f for f in d.custom_object_fields("X") if f.api_name == d.custom_name_field]
    if d.custom_name_field is None:
        assert names == [] and d.custom_name_max_length is None
    else:
        assert [f.max_length for f in names] == [d.custom_name_max_length]
