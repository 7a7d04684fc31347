"""Each dialect reads its sandbox options in one function both hooks call, so ``sandbox:<crm>``
(``open_sandbox``: URI text or typed values from code) and ``fmap sandbox serve`` (``serve_sandbox``:
``--option`` text) build the same emulator from the same options. Before, Zoho's in-process path
kept ``strict_picklists=False`` strict and Salesforce's served path turned ``licences=0`` into 10.
A bad or unknown option is a :class:`ValueError` naming it, which the CLI prints as a message."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from typer.testing import CliRunner

from fmap.cli import app
from runtime.dialects import get_dialect
from runtime.dialects.salesforce.client import daily_api_limit


def _both(dialect: str, tmp_path, options: dict[str, Any]) -> list[Any]:
    """The emulator each hook builds from ``options``: in process, then as served."""
    hooks = importlib.import_module(f"runtime.dialects.{dialect}")
    schema = get_dialect(dialect).standard_schema()
    client = hooks.open_sandbox(schema, tmp_path / "open.sqlite", None, dict(options))
    served = hooks.serve_sandbox(schema, tmp_path / "served.sqlite", None, None, dict(options))
    client.close()
    served.close()
    return [client.sandbox, served.app]


@pytest.mark.parametrize("licences", [0, "0", 3, " 3 "], ids=repr)
def test_salesforce_licences_zero_is_zero_on_both_paths(tmp_path, licences):
    expected = daily_api_limit("enterprise", int(licences))
    assert [s.api_limit for s in _both("salesforce", tmp_path, {"licences": licences})] \
        == [expected, expected]


def test_salesforce_licences_default_to_ten_when_not_given(tmp_path):
    expected = daily_api_limit("enterprise", 10)
    assert [s.api_limit for s in _both("salesforce", tmp_path, {})] == [expected, expected]
    assert [s.api_limit for s in _both("salesforce", tmp_path, {"api_limit": "0"})] == [0, 0]


@pytest.mark.parametrize("value, strict", [
    (False, False), ("false", False), ("False", False), ("0", False), (0, False), ("no", False),
    (True, True), ("true", True), ("1", True), ("ON", True), ("", True), (None, True),
], ids=repr)
def test_zoho_strict_picklists_reads_alike_on_both_paths(tmp_path, value, strict):
    sandboxes = _both("zoho", tmp_path, {"strict_picklists": value, "retry_after": value})
    assert [s.strict_picklists for s in sandboxes] == [strict, strict]
    assert [s.send_retry_after for s in sandboxes] == [strict, strict]


def test_freshsales_and_pipedrive_read_alike_on_both_paths(tmp_path):
    fs = _both("freshsales", tmp_path, {"rate_headers": "off", "job_polls": 0, "limit": "50"})
    assert [(s.rate_headers, s.job_polls, s.ledger.limit) for s in fs] == [(False, 0, 50.0)] * 2
    pd = _both("pipedrive", tmp_path, {"lockout_after": "0", "seats": 2})
    assert [s.lockout_after for s in pd] == [0, 0]  # 0 was read as "not given" (6) before


@pytest.mark.parametrize("dialect, options, message", [
    ("zoho", {"strict_picklists": "maybe"}, "zoho option strict_picklists='maybe' is not a "
                                            "yes/no value"),
    ("zoho", {"licences": "lots"}, "zoho option licences='lots' is not a whole number"),
    ("zoho", {"window": "0"}, "zoho option window='0' must be positive"),
    ("zoho", {"clock": "now"}, "zoho option clock='now' must be a function"),
    ("zoho", {"stict_picklists": "0"}, "unknown zoho option stict_picklists; known:"),
    ("salesforce", {"licences": "-1"}, "salesforce option licences='-1' must not be negative"),
    ("salesforce", {"page_size": "a lot"}, "salesforce option page_size='a lot' is not a whole"),
    ("salesforce", {"audit_fields": "sometimes"}, "audit_fields='sometimes' is not a yes/no"),
    ("salesforce", {"credits": "5", "bogus": 1}, "unknown salesforce options bogus, credits;"),
    ("freshsales", {"job_polls": "1.5"}, "freshsales option job_polls='1.5' is not a whole"),
    ("freshsales", {"rate_headers": "2"}, "freshsales option rate_headers='2' is not a yes/no"),
    ("pipedrive", {"seats": "three"}, "pipedrive option seats='three' is not a whole number"),
    ("pipedrive", {"licences": "3"}, "unknown pipedrive option licences; known:"),
], ids=lambda v: v if isinstance(v, str) and len(v) < 12 else None)
def test_bad_options_are_refused_by_name_on_both_paths(tmp_path, dialect, options, message):
    hooks = importlib.import_module(f"runtime.dialects.{dialect}")
    schema = get_dialect(dialect).standard_schema()
    with pytest.raises(ValueError) as opened:
        hooks.open_sandbox(schema, tmp_path / "o.sqlite", None, dict(options))
    with pytest.raises(ValueError) as served:
        hooks.serve_sandbox(schema, tmp_path / "s.sqlite", None, None, dict(options))
    assert message in str(opened.value)
    assert str(opened.value) == str(served.value)


def test_the_target_uri_keys_are_not_unknown_options(tmp_path):
    from runtime.targets import open_target

    dest = open_target(f"sandbox:zoho?db={tmp_path / 'o.sqlite'}&strict_picklists=false")
    try:
        assert dest.sandbox.strict_picklists is False
    finally:
        dest.close()


def test_the_cli_prints_a_bad_option_as_a_message(tmp_path):
    res = CliRunner().invoke(app, ["sandbox", "serve", "--dialect", "salesforce", "--port", "0",
                                   "--db", str(tmp_path / "s.sqlite"), "--option", "licences=x"])
    assert res.exit_code == 2, res.output
    assert "salesforce option licences='x' is not a whole number" in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
