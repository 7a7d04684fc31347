"""The Salesforce sandbox's HTTP envelopes (API_NOTES.md sections 2 and 6) and SalesforceClient
against it: create/upsert/update/delete/get/find/count/users/files, paging, the daily limit."""

from __future__ import annotations

import json

import pytest

from runtime.destinations.base import FatalError, WriteItem
from runtime.destinations.faults import FaultPlan
from runtime.dialects import get_dialect
from runtime.dialects.salesforce import open_sandbox
from runtime.dialects.salesforce.sandbox import SalesforceSandbox, sf_id
from runtime.schema.model import FieldSchema, FieldType
from runtime.targets import sandbox_users

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]
USERS = ROOT / "mappings" / "sandbox" / "salesforce_users.json"
API = "/services/data/v62.0"


def _schema():
    s = get_dialect("salesforce").standard_schema().model_copy(deep=True)
    acc = s.object("Account")
    acc.fields.append(FieldSchema(api_name="Source_System_ID__c", type=FieldType.text,
                                  max_length=50, external_id=True, unique=True, custom=True))
    acc.fields.append(FieldSchema(api_name="Tier__c", type=FieldType.picklist, custom=True,
                                  picklist_values=["Gold", "Silver"], label="Tier"))
    acc.fields.append(FieldSchema(api_name="Code__c", type=FieldType.text, max_length=5,
                                  custom=True, label="Code"))
    return s


@pytest.fixture
def sb(tmp_path):
    s = SalesforceSandbox(_schema(), tmp_path / "org.sqlite", users=sandbox_users(USERS),
                          token="tok", api_limit=50)
    yield s
    s.close()


def call(sb, method, path, body=None, query=None, token="tok"):
    q = {k: [v] for k, v in (query or {}).items()}
    status, headers, out = sb.handle(method, API + path, q,
                                     {"authorization": f"Bearer {token}"} if token else {},
                                     json.dumps(body).encode() if body is not None else b"")
    return status, headers, json.loads(out) if out else None


def test_ids_have_key_prefixes_and_case_safe_suffix():
    assert sf_id("001", 1) == "001Hb0000000001IAA"
    assert len(sf_id("a0B", 12345)) == 18


def test_auth_and_limit_headers(sb):
    status, h, body = call(sb, "GET", "/limits", token=None)
    assert status == 401
    assert body == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    status, h, _ = call(sb, "GET", "/limits")
    assert status == 200 and h["Sforce-Limit-Info"] == "api-usage=1/50"


# (id, records, allOrNone, expected status, expected per-item (success, statusCode or None))
COLLECTION_CASES = [
    ("partial-failure", [{"Name": "Acme"}, {"Tier__c": "Bronze", "Name": "X"}], False,
     200, [(True, None), (False, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST")]),
    ("all-or-none-rolled-back", [{"Name": "Acme"}, {"Phone": "1"}], True,
     200, [(False, "ALL_OR_NONE_OPERATION_ROLLED_BACK"), (False, "REQUIRED_FIELD_MISSING")]),
    ("string-too-long", [{"Name": "A", "Code__c": "TOOLONG"}], False,
     200, [(False, "STRING_TOO_LONG")]),
    ("duplicate-external-id", [{"Name": "A", "Source_System_ID__c": "x"},
                               {"Name": "B", "Source_System_ID__c": "x"}], False,
     200, [(True, None), (False, "DUPLICATE_VALUE")]),
    ("invalid-field-fails-request", [{"Name": "A"}, {"foo": 1}], False, 400, None),
]


@pytest.mark.parametrize("records,aon,status,expected", [c[1:] for c in COLLECTION_CASES],
                         ids=[c[0] for c in COLLECTION_CASES])
def test_collection_envelopes(sb, records, aon, status, expected):
    body = {"allOrNone": aon, "records": [{"attributes": {"type": "Account"}, **r}
                                          for r in records]}
    got_status, _, out = call(sb, "POST", "/composite/sobjects", body)
    assert got_status == status
    if expected is None:
        assert out == [{"message": "No such column 'foo' on sobject of type Account",
                        "errorCode": "INVALID_FIELD"}]
        assert sb.store.count("Account") == 0
        return
    assert [(x["success"], x["errors"][0]["statusCode"] if x["errors"] else None)
            for x in out] == expected
    for x in out:
        if not x["success"] and x["errors"][0]["statusCode"] != "ALL_OR_NONE_OPERATION_ROLLED_BACK":
            assert "id" not in x
    if aon:
        assert sb.store.count("Account") == 0
        assert out[0]["id"].startswith("001")  # keeps its id, as the documented example


def test_required_field_message_and_upsert_created(sb):
    _, _, out = call(sb, "POST", "/composite/sobjects",
                     {"records": [{"attributes": {"type": "Contact"}, "FirstName": "A"}]})
    assert out[0]["errors"] == [{"statusCode": "REQUIRED_FIELD_MISSING",
                                 "message": "Required fields are missing: [LastName]",
                                 "fields": ["LastName"]}]
    recs = {"allOrNone": False, "records": [
        {"attributes": {"type": "Account"}, "Name": "A", "Fmap_External_ID__c": "e1"}]}
    _, _, first = call(sb, "PATCH", "/composite/sobjects/Account/Fmap_External_ID__c", recs)
    _, _, second = call(sb, "PATCH", "/composite/sobjects/Account/Fmap_External_ID__c", recs)
    assert first[0]["created"] is True and second[0]["created"] is False
    assert first[0]["id"] == second[0]["id"]
    status, _, out = call(sb, "PATCH", "/composite/sobjects/Account/Namez", recs)
    assert status == 404 and out[0]["errorCode"] == "NOT_FOUND"
    status, _, out = call(sb, "PATCH", "/sobjects/Account/Fmap_External_ID__c/e2", {"Name": "B"})
    assert status == 201 and out["created"] is True


def test_daily_limit_gives_403_and_unpaced_client_stops(tmp_path):
    """The org's own answer once the allocation is spent (a client with pacing off meets it)."""
    client = open_sandbox(_schema(), tmp_path / "o.sqlite", sandbox_users(USERS),
                          {"api_limit": "3", "api_pacing": "off"})
    try:
        for _ in range(3):
            client.count("Account")
        with pytest.raises(FatalError, match="daily API request allocation"):
            client.create("Account", [WriteItem("a", "a", {"Name": "A"})])
        assert client.api_usage == (3, 3)
        assert client.sandbox.limited == 1  # the 403 was really answered
    finally:
        client.close()


def test_paced_client_stops_before_the_403(tmp_path):
    """The default client holds the request back and stops resumably: no lockout answer."""
    client = open_sandbox(_schema(), tmp_path / "o.sqlite", sandbox_users(USERS),
                          {"api_limit": "3"})
    try:
        for _ in range(3):
            client.count("Account")
        with pytest.raises(FatalError, match="--resume"):
            client.create("Account", [WriteItem("a", "a", {"Name": "A"})])
        assert client.sandbox.limited == 0
    finally:
        client.close()


def test_injected_throttle_is_transient_403(tmp_path):
    from runtime.destinations.base import TransientError

    client = open_sandbox(_schema(), tmp_path / "o.sqlite", None,
                          {"faults": FaultPlan(1, throttle_rate=1.0)})
    try:
        with pytest.raises(TransientError, match="REQUEST_LIMIT_EXCEEDED"):
            client.create("Account", [WriteItem("a", "a", {"Name": "A"})])
    finally:
        client.close()


def test_client_against_sandbox(tmp_path):
    c = open_sandbox(_schema(), tmp_path / "o.sqlite", sandbox_users(USERS), {"page_size": "7"})
    try:
        users = c.list_users()
        assert users[0].id == "005Hb0000000001AAA" and any(not u.active for u in users)
        owner = users[0].id
        made = c.create("Account", [WriteItem(f"k{i}", f"e{i}", {"Name": f"N{i}",
                                                                 "OwnerId": owner})
                                    for i in range(20)])
        assert all(r.ok and r.created and r.dest_id.startswith("001") for r in made)
        assert len({r.dest_id for r in made}) == 20
        up = c.upsert("Account", [WriteItem("k0", "e0", {"Name": "Renamed"}),
                                  WriteItem("new", "e99", {"Name": "New"})])
        assert [r.created for r in up] == [False, True] and up[0].dest_id == made[0].dest_id
        upd = c.update("Account", [WriteItem("k1", None, {"Phone": "123"}, made[1].dest_id)])
        assert upd[0].ok
        got = c.get("Account", [made[0].dest_id, made[1].dest_id, "001Hb00000000ZZZAAA"])
        assert got[made[0].dest_id]["Name"] == "Renamed"
        assert got[made[1].dest_id]["Phone"] == "123"
        assert got[made[0].dest_id]["$external_id"] == "e0"
        assert got[made[0].dest_id]["CreatedDate"].endswith(".000+0000")
        assert c.count("Account") == 21
        found = c.find_by_external_id("Account", [f"e{i}" for i in range(25)] + ["e99"])
        assert len(found) == 21
        listed = list(c.list_records("Account"))  # 3 pages of 7 + 0
        assert len(listed) == 21 and listed == sorted(listed, key=lambda r: r["id"])
        since = listed[-1]["SystemModstamp"].replace(".000+0000", "+00:00")
        assert len(list(c.list_records("Account", modified_since=since))) >= 1
        gone = c.delete("Account", [made[2].dest_id, "001Hb0000000XXXXAAA"])
        assert gone[0].ok and not gone[1].ok
        assert c.count("Account") == 20
        # files: idempotent by key, deleted through the ContentDocument
        f = tmp_path / "scan.pdf"
        f.write_bytes(b"%PDF-1.4 test")
        a = c.upload_attachment("Account", made[0].dest_id, "scan.pdf", f, "doc-1")
        again = c.upload_attachment("Account", made[0].dest_id, "scan.pdf", f, "doc-1")
        assert a.ok and a.created and a.dest_id.startswith("068")
        assert again.ok and again.created is False and again.dest_id == a.dest_id
        files = c.list_files(made[0].dest_id)
        assert len(files) == 1 and files[0]["ContentSize"] == f.stat().st_size
        bad = c.upload_attachment("Account", "001Hb0000000XXXXAAA", "scan.pdf", f, "doc-2")
        assert not bad.ok and bad.code == "FIELD_INTEGRITY_EXCEPTION"
        res = c.delete_attachments([a.dest_id])
        assert res[0].ok and c.list_files(made[0].dest_id) == []
        assert c.api_usage is not None and c.api_usage[0] == c.sandbox.api_used
    finally:
        c.close()


def test_wrong_token_through_transport(tmp_path):
    c = open_sandbox(_schema(), tmp_path / "o.sqlite", None, {})
    try:
        r = c._http.get("http://salesforce-sandbox.invalid" + API + "/limits",
                        headers={"Authorization": "Bearer nope"})
        assert r.status_code == 401 and r.json()[0]["errorCode"] == "INVALID_SESSION_ID"
        assert "api-usage=" in r.headers["sforce-limit-info"]
    finally:
        c.close()

