"""Conformance with Zoho's official CRM v8 OpenAPI files (../shared/crm/specs/zoho/v8.0, never
copied into the repo): every request the client sends and every response the sandbox returns, for
insert/update/upsert/delete/get/list/count/users/COQL/notes/attachments, validated with openapi-core;
then the documented error shapes, table-driven. Four defects of the spec files are repaired in
the copy (see ``_repair``).

The spec files ``$ref`` each other through absolute GitHub URLs; the fixture rewrites them to
relative paths in a temporary copy (as the spec README says). Where an operation documents only a
200 body (record.json), the 201/207/400 bodies of the same envelope are validated against it.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from runtime.destinations.base import WriteItem
from runtime.dialects import get_dialect
from runtime.dialects.zoho import open_sandbox
from runtime.dialects.zoho.auth import ZohoCredentials
from runtime.dialects.zoho.client import ZohoClient
from runtime.dialects.zoho.sandbox import SyncASGITransport, ZohoSandbox
from runtime.schema.changes import apply_changes
from runtime.targets import sandbox_users

openapi_core = pytest.importorskip("openapi_core", reason="openapi-core is a dev dependency")
from openapi_core import OpenAPI  # noqa: E402
from openapi_core.testing import MockRequest, MockResponse  # noqa: E402

pytestmark = [pytest.mark.shared,
              pytest.mark.filterwarnings("ignore:Unsupported scheme type:UserWarning")]
_GITHUB = "https://raw.githubusercontent.com/Zohocorp-Pvt-Ltd/crm-oas/refs/heads/main/v8.0/"
SPEC_FILES = ("record", "users", "notes", "coql", "attachments", "record_count")
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "zoho"


@pytest.fixture(scope="module")
def specs(shared_dir, tmp_path_factory) -> dict[str, OpenAPI]:
    src = shared_dir / "crm" / "specs" / "zoho" / "v8.0"
    if not (src / "record.json").is_file():
        pytest.skip(f"Zoho v8 OpenAPI files not found under {src}")
    out = tmp_path_factory.mktemp("zoho-v8")
    for f in src.glob("*.json"):
        doc = json.loads(f.read_text("utf-8").replace(_GITHUB, "./"))
        _repair(doc)
        (out / f.name).write_text(json.dumps(doc), "utf-8")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {name: OpenAPI.from_file_path(str(out / f"{name}.json")) for name in SPEC_FILES}


def _repair(doc: dict) -> None:
    """Two spec defects repaired in the temporary copy.

    - Error schemas (``API_Exception`` ...) require no key, so every JSON object matches them and
      each ``oneOf: [{data: [...]}, API_Exception]`` fails for every envelope. Errors always carry
      ``code``, ``status`` and ``message``; the copy requires those, which makes ``oneOf`` exact.
    - notes.json refers to ``#/components/parameters/If-Modified-Since``, which it does not
      define; the dangling parameter is dropped.
    - notes.json's ``Note`` is both the request and the response record and requires the fields
      the server sets (``id``, ``Created_Time``, ``$editable``...); a create cannot send them, so
      the copy drops that ``required`` list (types are still checked).
    - users.json's user ``email`` has ``pattern: [a-z0-9]{9}[@][a-z0-9]{5}[.]com`` (taken from an
      example address); the copy drops that pattern.
    """
    users = ((doc.get("components") or {}).get("schemas") or {}).get("users")
    if isinstance(users, dict) and isinstance((users.get("properties") or {}).get("email"), dict):
        users["properties"]["email"].pop("pattern", None)
    note = ((doc.get("components") or {}).get("schemas") or {}).get("Note")
    if isinstance(note, dict) and "Note_Content" in (note.get("properties") or {}):
        note.pop("required", None)
    for name, schema in ((doc.get("components") or {}).get("schemas") or {}).items():
        props = schema.get("properties") if isinstance(schema, dict) else None
        if name.endswith("Exception") and isinstance(props, dict) and not schema.get("required"):
            schema["required"] = [k for k in ("code", "status", "message") if k in props]
    have = set((doc.get("components") or {}).get("parameters") or {})
    for item in (doc.get("paths") or {}).values():
        for op in item.values():
            if isinstance(op, dict) and isinstance(op.get("parameters"), list):
                op["parameters"] = [
                    p for p in op["parameters"]
                    if not (isinstance(p, dict) and str(p.get("$ref", "")).startswith(
                        "#/components/parameters/") and p["$ref"].rsplit("/", 1)[1] not in have)]


class Recorder(httpx.BaseTransport):
    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.exchanges: list[tuple[httpx.Request, httpx.Response]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        resp = self.inner.handle_request(request)
        resp.read()
        self.exchanges.append((request, resp))
        return resp

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def recorded(tmp_path):
    schema = get_dialect("zoho").standard_schema()
    schema = apply_changes(schema, [{"action": "create_module", "object": "Patient_Details"},
                                    {"action": "create_field", "object": "Patient_Details",
                                     "field": "Name", "type": "text(120)"}])
    sandbox = ZohoSandbox(schema, tmp_path / "org.sqlite",
                          users=sandbox_users(FIXTURES / "users.json"))
    rec = Recorder(SyncASGITransport(sandbox))
    client = ZohoClient(api_domain="https://zohoapis.com",
                        credentials=ZohoCredentials(access_token=sandbox.token),
                        http=httpx.Client(transport=rec), schema=sandbox.schema())
    yield client, rec, sandbox
    client.close()
    rec.close()
    sandbox.close()


def _spec_for(path: str) -> str:
    if path == "/crm/v8/coql":
        return "coql"
    if path.startswith("/crm/v8/users"):
        return "users"
    if path.startswith("/crm/v8/Notes"):
        return "notes"
    if path.endswith("/Attachments"):
        return "attachments"
    if path.endswith("/actions/count"):
        return "record_count"
    if path.startswith("/crm/v8/settings/"):
        return "settings"
    return "record"


def _mock_request(req: httpx.Request) -> MockRequest:
    ctype = req.headers.get("content-type", "application/json").split(";")[0]
    return MockRequest("https://zohoapis.com", req.method.lower(), req.url.path,
                       args=dict(req.url.params), headers=dict(req.headers),
                       data=req.content or None, content_type=ctype)


def _documented(api: OpenAPI, req: httpx.Request) -> set[str]:
    spec = api.spec
    for pattern, item in (spec / "paths").items():
        regex = "^" + "".join(
            "[^/]+" if part.startswith("{") else part for part in
            __import__("re").split(r"(\{[^}]+\})", pattern)) + "$"
        if __import__("re").match(regex, req.url.path) and req.method.lower() in item:
            op = item / req.method.lower()
            return set((op / "responses").keys())
    return set()


def validate(specs: dict[str, OpenAPI], req: httpx.Request, resp: httpx.Response) -> None:
    try:
        _validate(specs, req, resp)
    except Exception as exc:
        exc.add_note(f"in {req.method} {req.url} -> {resp.status_code}")
        raise


def _validate(specs: dict[str, OpenAPI], req: httpx.Request, resp: httpx.Response) -> None:
    api = specs[_spec_for(req.url.path)]
    mreq = _mock_request(req)
    # attachments.json marks `attachmentUrl` required on upload (a multipart `file` is the other
    # way) and `ids` required on listing a record's attachments: those two requests are not
    # validated, their responses are
    if _spec_for(req.url.path) != "attachments":
        api.validate_request(mreq)
    if not resp.content:
        return
    documented = _documented(api, req)
    status = resp.status_code
    if str(status) not in documented:
        assert "200" in documented, (req.url.path, status, documented)
        status = 200
    api.validate_response(mreq, MockResponse(resp.content, status_code=status,
                                             content_type="application/json"))


def test_client_requests_and_sandbox_responses_conform(specs, recorded, tmp_path):
    client, rec, _ = recorded
    up = client.upsert("Contacts", [
        WriteItem("contacts:1", "contacts:1", {"Last_Name": "Smith", "Email": "a@example.org"}),
        WriteItem("contacts:2", "contacts:2", {"First_Name": "no last name"}),
        WriteItem("contacts:3", "contacts:3", {"Last_Name": "x" * 200}),
    ])
    assert [r.ok for r in up] == [True, False, False]
    cid = up[0].dest_id
    client.upsert("Contacts", [WriteItem("contacts:1", "contacts:1", {"Last_Name": "Smyth"})])
    acc = client.create("Accounts", [WriteItem("accounts:1", "accounts:1",
                                               {"Account_Name": "Harbour"})])
    client.update("Contacts", [WriteItem("contacts:1", "contacts:1",
                                         {"Account_Name": acc[0].dest_id}, dest_id=cid)])
    client.create("Patient_Details", [WriteItem("pd:1", "pd:1", {"Name": "Pat"})])
    note = client.create("Notes", [WriteItem("n:1", "n:1", {"Note_Content": "hello",
                                                            "Parent_Id": cid})])
    assert note[0].ok
    assert client.get("Contacts", [cid])[cid]["Account_Name"] == acc[0].dest_id
    assert client.get("Notes", [note[0].dest_id])
    assert client.find_by_external_id("Contacts", ["contacts:1", "nope"]) == {"contacts:1": cid}
    assert client.count("Contacts") == 1
    assert len(list(client.list_records("Contacts"))) == 1
    assert {u.email for u in client.list_users()} >= {"admin@example.com"}
    f = tmp_path / "consent.txt"
    f.write_text("signed")
    assert client.upload_attachment("Contacts", cid, "consent.txt", f, "k").ok
    assert client.list_attachments("Contacts", cid)
    assert client.delete("Contacts", [cid, "5725767000000999999"])[0].ok
    assert client.modules()["modules"]
    assert client.metadata("Contacts")["fields"]["fields"]
    seen = set()
    for req, resp in rec.exchanges:
        if _spec_for(req.url.path) == "settings":
            continue  # settings: checked by loading them (schema pull), not against the spec
        validate(specs, req, resp)
        seen.add((req.method, _spec_for(req.url.path)))
    assert {("POST", "record"), ("PUT", "record"), ("DELETE", "record"), ("GET", "record"),
            ("POST", "coql"), ("GET", "users"), ("POST", "notes"), ("GET", "notes"),
            ("GET", "record_count"), ("POST", "attachments")} <= seen


ERROR_CASES = [
    # (id, method, path, body, expected status, expected code, detail keys)
    ("invalid-field", "POST", "/crm/v8/Contacts", {"data": [{"Last_Name": "a", "Nope": 1}]},
     400, "INVALID_DATA", {"api_name": "Nope", "json_path": "$.data[0].Nope"}),
    ("mandatory", "POST", "/crm/v8/Leads", {"data": [{"First_Name": "a"}]},
     400, "MANDATORY_NOT_FOUND", {"api_name": "Last_Name", "json_path": "$.data[0].Last_Name"}),
    ("too-long", "POST", "/crm/v8/Leads", {"data": [{"Last_Name": "x" * 81}]},
     400, "INVALID_DATA", {"api_name": "Last_Name", "maximum_length": "80"}),
    ("bad-type", "POST", "/crm/v8/Leads", {"data": [{"Last_Name": "a", "Email": "not-an-email"}]},
     400, "INVALID_DATA", {"api_name": "Email", "expected_data_type": "email"}),
    ("bad-lookup", "POST", "/crm/v8/Contacts",
     {"data": [{"Last_Name": "a", "Account_Name": {"id": "5725767000000999999"}}]},
     400, "INVALID_DATA", {"api_name": "Account_Name"}),
    ("bad-update-id", "PUT", "/crm/v8/Leads", {"data": [{"id": "5725767000000999999",
                                                          "Last_Name": "a"}]},
     400, "INVALID_DATA", {"api_name": "id"}),
]


@pytest.mark.parametrize("case", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_documented_error_shapes(specs, recorded, case):
    client, rec, sandbox = recorded
    _, method, path, body, status, code, details = case
    http = client._http  # noqa: SLF001 (the recorded transport, raw requests)
    resp = http.request(method, "https://zohoapis.com" + path, json=body,
                        headers={"Authorization": f"Zoho-oauthtoken {sandbox.token}"})
    assert resp.status_code == status
    item = resp.json()["data"][0]
    assert item["code"] == code and item["status"] == "error"
    for k, v in details.items():
        assert item["details"][k] == v
    validate(specs, *rec.exchanges[-1])


def test_mixed_batch_is_207_and_duplicates_name_the_record(specs, recorded):
    client, rec, sandbox = recorded
    h = {"Authorization": f"Zoho-oauthtoken {sandbox.token}"}
    url = "https://zohoapis.com/crm/v8/Leads"
    first = client._http.post(url, json={"data": [{"Last_Name": "a", "Source_System_ID": "L1"}]},
                              headers=h)
    assert first.status_code == 201
    lead_id = first.json()["data"][0]["details"]["id"]
    assert len(lead_id) == 19 and lead_id.isdigit()
    assert first.json()["data"][0]["details"]["Created_Time"][-6] in "+-"
    mixed = client._http.post(url, json={"data": [{"Last_Name": "b"},
                                                  {"Last_Name": "c", "Source_System_ID": "L1"}]},
                              headers=h)
    assert mixed.status_code == 207
    ok, dup = mixed.json()["data"]
    assert ok["code"] == "SUCCESS" and dup["code"] == "DUPLICATE_DATA"
    assert dup["details"]["duplicate_record"]["id"] == lead_id
    assert dup["details"]["json_path"] == "$.data[1].Source_System_ID"
    upsert = client._http.post(url + "/upsert", json={
        "data": [{"Last_Name": "d", "Source_System_ID": "L1"}],
        "duplicate_check_fields": ["Source_System_ID"], "trigger": []}, headers=h)
    (item,) = upsert.json()["data"]
    assert item["action"] == "update" and item["duplicate_field"] == "Source_System_ID"
    for req, resp in rec.exchanges[-3:]:
        validate(specs, req, resp)


WHOLE_REQUEST_ERRORS = [
    ("no-token", {}, "GET", "/crm/v8/Leads/actions/count", None, 401, "AUTHENTICATION_FAILURE"),
    ("bad-token", {"Authorization": "Zoho-oauthtoken wrong"}, "GET",
     "/crm/v8/Leads/actions/count", None, 401, "INVALID_TOKEN"),
    ("bearer", {"Authorization": "Bearer x"}, "GET", "/crm/v8/users", None, 401,
     "AUTHENTICATION_FAILURE"),
    ("bad-module", None, "POST", "/crm/v8/Nope", {"data": [{"a": 1}]}, 400, "INVALID_MODULE"),
    ("over-100", None, "POST", "/crm/v8/Leads", {"data": [{"Last_Name": "x"}] * 101}, 400,
     "LIMIT_EXCEEDED"),
]


@pytest.mark.parametrize("case", WHOLE_REQUEST_ERRORS, ids=[c[0] for c in WHOLE_REQUEST_ERRORS])
def test_whole_request_errors_are_top_level(recorded, case):
    client, rec, sandbox = recorded
    _, headers, method, path, body, status, code = case
    headers = headers if headers is not None else {
        "Authorization": f"Zoho-oauthtoken {sandbox.token}"}
    resp = client._http.request(method, "https://zohoapis.com" + path, json=body,
                                headers=headers)
    assert resp.status_code == status
    data = resp.json()
    assert data["code"] == code and data["status"] == "error" and "data" not in data


def test_credit_and_concurrency_429s(tmp_path):
    t = [0.0]
    dest = open_sandbox(get_dialect("zoho").standard_schema(), tmp_path / "o.sqlite", None,
                        {"credits": "5", "window": "60", "clock": lambda: t[0]})
    try:
        h = {"Authorization": f"Zoho-oauthtoken {dest.sandbox.token}"}
        http = dest._http  # noqa: SLF001
        url = "http://zoho-sandbox.invalid/crm/v8/Leads/actions/count"
        codes = [http.get(url, headers=h).status_code for _ in range(6)]
        assert codes == [200] * 5 + [429]
        r = http.get(url, headers=h)
        body = r.json()
        assert body["code"] == "TOO_MANY_REQUESTS" and body["details"]["retry_after"] == 60
        assert r.headers["X-API-CREDITS-REMAINING"] == "0"
        t[0] = 61
        assert http.get(url, headers=h).status_code == 200
        dest.sandbox.tier = type(dest.sandbox.tier)(concurrency=0)
        assert http.get(url, headers=h).status_code == 429
    finally:
        dest.close()


def test_recycle_bin_custom_fields_and_snapshot_pull(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from fmap.cli import app

    db = tmp_path / "org.sqlite"
    monkeypatch.chdir(tmp_path)
    dest = open_sandbox(get_dialect("zoho").standard_schema(), db, None, {})
    try:
        made = dest.create_fields("Contacts", [{"field_label": "NHS Number", "data_type": "text",
                                                "length": 12, "unique": {"casesensitive": False}}])
        assert made["fields"][0]["status"] == "success"
        dest.create_module("Treatment_Plans", "Treatment Plans")
        (r,) = dest.create("Contacts", [WriteItem("c:1", "c:1", {"Last_Name": "a",
                                                                  "NHS_Number": "9434765919"})])
        assert r.ok
        dest.delete("Contacts", [r.dest_id])
        h = {"Authorization": f"Zoho-oauthtoken {dest.sandbox.token}"}
        binned = dest._http.get("http://zoho-sandbox.invalid/crm/v8/settings/recycle_bin",  # noqa: SLF001
                                headers=h).json()["recycle_bin"]
        assert [b["id"] for b in binned] == [r.dest_id]
    finally:
        dest.close()
    # the org's custom schema survives a reopen (as a served sandbox restarting)
    again = open_sandbox(get_dialect("zoho").standard_schema(), db, None, {})
    try:
        assert again.schema().object("Treatment_Plans") is not None
        assert again.schema().object("Contacts").field("NHS_Number").unique
    finally:
        again.close()
    out = tmp_path / "snap.json"
    res = CliRunner().invoke(app, ["schema", "pull", f"sandbox:zoho?db={db}", "--module",
                                   "Contacts", "--module", "Treatment_Plans", "-o", str(out)])
    assert res.exit_code == 0, res.output
    snap = get_dialect("zoho").load_metadata(json.loads(out.read_text()), source_name="snap")
    contacts = snap.object("Contacts")
    assert contacts.field("NHS_Number").unique and contacts.field("Last_Name").required
    assert snap.object("Treatment_Plans").custom
