"""The Zoho sandbox's own behaviour: `fmap sandbox serve` safety and token, delta listing, recycle
bin, picklist strictness, persistence across reopen, fault translation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from runtime.destinations.base import TransientError, WriteItem
from runtime.destinations.faults import FaultPlan
from runtime.dialects import get_dialect
from runtime.dialects.zoho import open_sandbox, parse_faults

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def org(tmp_path):
    dest = open_sandbox(get_dialect("zoho").standard_schema(), tmp_path / "org.sqlite", None, {})
    yield dest
    dest.close()


def _raw(dest, method: str, path: str, **kw) -> httpx.Response:
    h = {"Authorization": f"Zoho-oauthtoken {dest.sandbox.token}", **kw.pop("headers", {})}
    return dest._http.request(method, "http://zoho-sandbox.invalid" + path,  # noqa: SLF001
                              headers=h, **kw)


def test_serve_refuses_non_loopback_without_flag():
    from typer.testing import CliRunner

    from fmap.cli import app

    res = CliRunner().invoke(app, ["sandbox", "serve", "--host", "0.0.0.0", "--port", "1"])
    assert res.exit_code == 2 and "refusing to bind" in res.output


def test_serve_prints_a_generated_token_once(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "FMAP_SANDBOX_TOKEN"}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.Popen([sys.executable, "-m", "fmap", "sandbox", "serve", "--port", "0",
                             "--db", str(tmp_path / "s.sqlite")], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("ZOHO_ACCESS_TOKEN=") and len(line) > 30
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert "ZOHO_ACCESS_TOKEN" not in proc.stdout.read()


def test_delta_listing_and_recycle_bin(org):
    (a,) = org.create("Leads", [WriteItem("l:1", "l:1", {"Last_Name": "A"})])
    first = list(org.list_records("Leads"))
    stamp = _raw(org, "GET", f"/crm/v8/Leads/{a.dest_id}").json()["data"][0]["Modified_Time"]
    assert stamp.endswith("+00:00")
    org.create("Leads", [WriteItem("l:2", "l:2", {"Last_Name": "B"})])
    later = list(org.list_records("Leads", modified_since="2030-01-01T00:00:00+00:00"))
    assert later == [] and len(first) == 1
    assert len(list(org.list_records("Leads", modified_since=stamp))) == 2
    assert org.delete("Leads", [a.dest_id])[0].ok
    assert org.get("Leads", [a.dest_id]) == {}
    assert _raw(org, "GET", f"/crm/v8/Leads/{a.dest_id}").status_code == 204
    again = org.delete("Leads", [a.dest_id])[0]
    assert not again.ok and again.code == "INVALID_DATA"
    assert org.count("Leads") == 1


def test_pages_use_page_token(org):
    org.create("Leads", [WriteItem(f"l:{i}", f"l:{i}", {"Last_Name": f"L{i}"}) for i in range(100)])
    org.create("Leads", [WriteItem(f"m:{i}", f"m:{i}", {"Last_Name": f"M{i}"}) for i in range(150)])
    page1 = _raw(org, "GET", "/crm/v8/Leads", params={"per_page": 200}).json()
    assert page1["info"]["more_records"] and page1["info"]["next_page_token"]
    assert len(list(org.list_records("Leads"))) == 250


def test_picklists_strict_by_default_and_configurable(tmp_path):
    schema = get_dialect("zoho").standard_schema()
    item = WriteItem("l:1", "l:1", {"Last_Name": "A", "Lead_Source": "Carrier pigeon"})
    strict = open_sandbox(schema, tmp_path / "a.sqlite", None, {})
    lax = open_sandbox(schema, tmp_path / "b.sqlite", None, {"strict_picklists": "0"})
    try:
        (r,) = strict.create("Leads", [item])
        assert not r.ok and r.code == "INVALID_DATA" and r.field == "Lead_Source"
        assert lax.create("Leads", [item])[0].ok
    finally:
        strict.close()
        lax.close()


def test_faults_translate_to_http(tmp_path):
    schema = get_dialect("zoho").standard_schema()
    plan = FaultPlan(1, lost_response_rate=1.0)
    dest = open_sandbox(schema, tmp_path / "f.sqlite", None, {"faults": plan})
    try:
        with pytest.raises(TransientError) as info:
            dest.upsert("Leads", [WriteItem("l:1", "l:1", {"Last_Name": "A"})])
        assert info.value.maybe_committed  # the connection dropped after the write committed
        assert dest.find_by_external_id("Leads", ["l:1"])  # ...and it did commit
        dest.sandbox.faults = None
        dest.sandbox.store.faults = FaultPlan(2, record_error_rate=1.0)
        (r,) = dest.upsert("Leads", [WriteItem("l:2", "l:2", {"Last_Name": "B"})])
        assert r.code == "RECORD_LOCKED" and r.retryable
        dest.sandbox.store.faults = FaultPlan(3, throttle_rate=1.0, throttle_retry_after=2)
        with pytest.raises(TransientError) as info:
            dest.create("Leads", [WriteItem("l:3", "l:3", {"Last_Name": "C"})])
        assert info.value.retry_after == 2 and not info.value.maybe_committed
    finally:
        dest.close()


def test_parse_faults_text():
    plan = parse_faults("seed=4,throttle_rate=0.1,lost_response_rate=0.05,fatal_after_calls=9")
    assert plan.seed == 4 and plan.throttle_rate == 0.1 and plan.fatal_after_calls == 9
    assert parse_faults(None) is None


def test_data_survives_reopen(tmp_path):
    schema = get_dialect("zoho").standard_schema()
    db = tmp_path / "p.sqlite"
    first = open_sandbox(schema, db, None, {})
    (r,) = first.create("Accounts", [WriteItem("a:1", "a:1", {"Account_Name": "Harbour"})])
    first.close()
    second = open_sandbox(schema, db, None, {})
    try:
        assert second.find_by_external_id("Accounts", ["a:1"]) == {"a:1": r.dest_id}
        (r2,) = second.create("Accounts", [WriteItem("a:2", "a:2", {"Account_Name": "Bay"})])
        assert int(r2.dest_id) > int(r.dest_id)  # ids keep counting, never reused
    finally:
        second.close()


def test_unknown_route_and_bad_json(org):
    r = _raw(org, "PATCH", "/crm/v8/Leads/actions/whatever")
    assert r.status_code == 400 and r.json()["code"] == "INVALID_URL_PATTERN"
    r = _raw(org, "POST", "/crm/v8/Leads", content=b"{not json",
             headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["status"] == "error"


def test_malformed_parameters_are_a_zoho_500_not_a_crash(org):
    r = _raw(org, "GET", "/crm/v8/users", params={"per_page": "many"})
    assert r.status_code == 500 and r.json()["code"] == "INTERNAL_ERROR"


def test_attachments_upload_once_and_delete(org, tmp_path):
    (c,) = org.create("Contacts", [WriteItem("c:1", "c:1", {"Last_Name": "A"})])
    f = tmp_path / "x-ray.txt"
    f.write_text("image")
    first = org.upload_attachment("Contacts", c.dest_id, "x-ray.txt", f, "doc:1")
    second = org.upload_attachment("Contacts", c.dest_id, "x-ray.txt", f, "doc:1")
    assert first.created and second.created is False and first.dest_id == second.dest_id
    assert len(org.list_attachments("Contacts", c.dest_id)) == 1
    (gone,) = org.delete_attachments([first.dest_id])
    assert gone.ok and org.list_attachments("Contacts", c.dest_id) == []
    (again,) = org.delete_attachments([first.dest_id])
    assert not again.ok
