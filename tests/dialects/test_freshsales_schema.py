"""Freshsales schema work: ``metadata_bundle`` (what ``fmap schema pull`` saves) read back by the
dialect's loader, the sandbox's ``settings/{e}/fields`` in the documented keys (API_NOTES.md 3.4),
``apply_schema_changes`` through the documented settings calls (custom modules and custom fields,
API_NOTES.md 3.5) with the admin-steps refusal for what the API cannot create, and the
``serve_sandbox`` / loopback ``open_client`` hooks."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from runtime.destinations.base import WriteItem
from runtime.dialects import get_dialect
from runtime.dialects.base import ServedSandbox, UnsupportedByDialect
from runtime.dialects.freshsales import open_client, open_sandbox, serve_sandbox
from runtime.dialects.freshsales.auth import FreshsalesCredentials
from runtime.dialects.freshsales.client import FreshsalesClient, parse_field_type_codes
from runtime.dialects.freshsales.sandbox import SANDBOX_FIELD_TYPE_CODES, SyncASGITransport
from runtime.schema.model import FieldSchema, FieldType, SystemSchema

EXAMPLES = Path(__file__).resolve().parents[3] / "shared" / "crm" / "metadata_examples"
DIALECT = get_dialect("freshsales")


def org_schema() -> SystemSchema:
    base = DIALECT.standard_schema()
    base.object("Contact").fields.append(
        FieldSchema(api_name="cf_gender", type=FieldType.picklist, custom=True, label="Gender",
                    picklist_values=["Male", "Female", "Other"]))
    return base


@pytest.fixture
def client(tmp_path):
    c = open_sandbox(org_schema(), tmp_path / "org.sqlite", None, {})
    yield c
    c.close()


def field_change(obj: str, name: str, type_: str = "text(50)", **details) -> dict:
    return {"action": "create_field", "object": obj, "field": name, "type": type_,
            "details": details}


# ---------------------------------------------------------------------- metadata
def test_fields_response_uses_the_documented_keys(client):
    """API_NOTES.md 3.4: {"fields": [...]} with id, name (cf_ for custom), label, type,
    required, visible, default (system field), base_model, choices[{id, value}]."""
    body = client.metadata("Contact")
    assert set(body) == {"fields"}
    by_name = {f["name"]: f for f in body["fields"]}
    for f in body["fields"]:
        assert {"id", "name", "label", "type", "required", "visible", "default",
                "base_model"} <= set(f), f
        assert f["default"] is (not f["name"].startswith("cf_"))
        assert f["base_model"] == "Contact"
    gender = by_name["cf_gender"]
    assert gender["type"] == "dropdown"
    assert [c["value"] for c in gender["choices"]] == ["Male", "Female", "Other"]
    ids = [c["id"] for c in gender["choices"]]
    assert all(isinstance(i, int) and i > 10**10 for i in ids) and len(set(ids)) == 3


def test_metadata_bundle_leaves_out_objects_the_account_lacks(client):
    """The contract (runtime/dialects/base.py): a module the account does not have (its fields
    call answers 404) is left out rather than failing the whole pull."""
    bundle = client.metadata_bundle(["Contact", "pets", "Deal"])
    assert list(bundle["objects"]) == ["Contact", "Deal"]


def test_metadata_bundle_loads_back_with_choice_ids(client):
    bundle = client.metadata_bundle(["Contact", "Deal", "Contact"])
    assert list(bundle["objects"]) == ["Contact", "Deal"]
    json.dumps(bundle)  # fmap schema pull saves it verbatim
    warnings: list = []
    schema = DIALECT.load_metadata(bundle, source_name="bundle.json", warnings=warnings)
    contact = schema.object("Contact")
    gender = contact.field("cf_gender")
    assert gender.type == FieldType.picklist and gender.custom
    served = {c["value"]: c["id"] for c in bundle["objects"]["Contact"]["fields"]
              if c["name"] == "cf_gender" for c in c["choices"]}
    assert gender.vendor["choices"] == served
    assert contact.field("owner_id").type == FieldType.owner
    assert contact.field("cf_fmap_external_id").custom
    assert schema.object("Deal") is not None
    # one object's response, named by its base_model, loads too
    single = DIALECT.load_metadata(bundle["objects"]["Deal"], source_name="deals.json")
    assert single.objects[0].api_name == "Deal"


def test_vendor_metadata_example_loads():
    """A real Freshsales fields response, if one is ever saved to ../shared."""
    if not EXAMPLES.is_dir():
        pytest.skip(f"../shared/crm/metadata_examples is absent ({EXAMPLES})")
    found = sorted(EXAMPLES.glob("freshsales*.json"))
    if not found:
        pytest.skip("no Freshsales fields example exists in ../shared/crm/metadata_examples "
                    "(its README: none found in any public source); the sandbox's responses "
                    "in the documented keys are tested instead")
    for path in found:
        schema = DIALECT.load_metadata(json.loads(path.read_text("utf-8")),
                                       source_name=path.name, object_name="contacts")
        assert schema.objects and schema.objects[0].fields


# ---------------------------------------------------------------------- schema changes
def test_apply_creates_module_and_fields_served_as_cf_fields(client, tmp_path):
    changes = [
        field_change("Contact", "cf_nhs_number", label="NHS Number", required=True),
        {"action": "create_module", "object": "treatment_plans",
         "details": {"label": "Treatment Plans"}},
        field_change("treatment_plans", "cf_total_cost", "currency(10, 2)", label="Total cost"),
        field_change("treatment_plans", "cf_seen_on", "date"),
        field_change("Deal", "cf_flag", "picklist"),  # a dropdown without choices is creatable
    ]
    results = client.apply_schema_changes(changes)
    assert [(r["object"], r["field"], r["status"]) for r in results] == [
        ("treatment_plans", None, "created"), ("Contact", "cf_nhs_number", "created"),
        ("treatment_plans", "cf_total_cost", "created"),
        ("treatment_plans", "cf_seen_on", "created"), ("Deal", "cf_flag", "created")]
    assert "rename it" in results[3]["message"]  # no label given: one derived from the name
    bundle = client.metadata_bundle(["Contact", "treatment_plans", "Deal"])
    schema = DIALECT.load_metadata(bundle, source_name="after.json")
    nhs = schema.object("Contact").field("cf_nhs_number")
    assert (nhs.type, nhs.required, nhs.custom, nhs.label) == (FieldType.text, True, True,
                                                                 "NHS Number")
    tp = schema.object("treatment_plans")
    assert tp.field("cf_total_cost").type == FieldType.decimal
    assert tp.field("cf_seen_on").type == FieldType.date
    assert {"name", "owner_id"} <= set(tp.field_names())
    flag = next(f for f in bundle["objects"]["Deal"]["fields"] if f["name"] == "cf_flag")
    assert flag["type"] == "dropdown" and not flag.get("choices")
    # the new fields take data at once, under custom_field
    r = client.upsert("treatment_plans", [WriteItem("k1", "TP-1", {
        "name": "Plan 1", "cf_total_cost": 120.5, "cf_seen_on": "2024-03-01"})])[0]
    assert r.ok, r
    assert float(client.get("treatment_plans", [r.dest_id])[r.dest_id]["cf_total_cost"]) == 120.5
    # the org keeps its customisation when reopened on the same file
    again = open_sandbox(DIALECT.standard_schema(), tmp_path / "org.sqlite", None, {})
    try:
        assert again.sandbox.schema().object("treatment_plans").field("cf_seen_on")
        assert again.count("treatment_plans") == 1
    finally:
        again.close()
    # applying a field twice is a per-change failure with the vendor's message
    twice = client.apply_schema_changes([field_change("Contact", "cf_nhs_number",
                                                      label="NHS Number")])
    assert twice[0]["status"] == "failed" and "already been taken" in twice[0]["message"]


@pytest.mark.parametrize("change, step", [
    (field_change("Contact", "cf_status", "picklist", values=["New", "Old"]),
     "choices New, Old"),
    (field_change("Contact", "cf_source_id", unique=True, external_id=True),
     "property Unique"),
    (field_change("Deal", "cf_patient", "lookup(Contact)", lookup="Contact"),
     "lookup to Contact"),
], ids=["dropdown-with-choices", "unique", "lookup"])
def test_what_the_api_cannot_create_raises_admin_steps_and_creates_nothing(client, change,
                                                                          step):
    before = client.sandbox.requests
    changes = [{"action": "create_module", "object": "cm_things", "details": {}},
               field_change("Contact", "cf_plain"), change]
    with pytest.raises(UnsupportedByDialect) as exc:
        client.apply_schema_changes(changes)
    msg = str(exc.value)
    assert "Admin Settings > Module customization" in msg and step in msg
    assert f"{change['object']}.{change['field']}" in msg and "cf_plain" not in msg
    assert client.sandbox.requests == before  # checked before anything was sent
    assert client.sandbox.schema().object("cm_things") is None


def test_requests_follow_the_documented_settings_calls():
    sent: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        sent.append(req)
        if req.url.path.endswith("/module_customizations"):
            return httpx.Response(200, json={"module_customization": {"id": 5, "custom": True}})
        if req.url.path.endswith("/forms"):
            return httpx.Response(200, json={"forms": [{"id": 77, "active": True,
                                                        "fields": []}]})
        if req.url.path.endswith("/fields") and req.method == "GET":
            return httpx.Response(200, json={"fields": [
                {"id": 9, "name": "cf_invoice_no", "label": "Invoice no", "type": "text",
                 "required": False, "default": False, "base_model": "cm_ledger"}]})
        return httpx.Response(200, json={"field": {"name": "cf_invoice_no", "id": "9"}})

    c = FreshsalesClient(base_url="https://widgetz.myfreshworks.com/crm/sales",
                         credentials=FreshsalesCredentials("k"),
                         http=httpx.Client(transport=httpx.MockTransport(handler)),
                         field_type_codes={"text": 41})
    out = c.apply_schema_changes([
        field_change("cm_ledger", "cf_invoice_no", label="Invoice no"),
        {"action": "create_module", "object": "cm_ledger", "details": {"label": "Ledgers"}}])
    assert [r["status"] for r in out] == ["created", "created"]
    assert [(r.method, r.url.path.removeprefix("/crm/sales")) for r in sent] == [
        ("POST", "/api/settings/module_customizations"),
        ("GET", "/api/settings/cm_ledger/forms"),
        ("POST", "/api/settings/cm_ledger/forms/77/fields"),
        ("GET", "/api/settings/cm_ledger/fields")]  # the client learns what it made
    assert c.schema().object("cm_ledger").field("cf_invoice_no").custom
    module = json.loads(sent[0].content)["module_customization"]
    assert module["entity_name"] == "cm_ledger" and module["plural_name"] == "Ledgers"
    assert {"singular_name", "icon"} <= set(module)
    assert json.loads(sent[2].content) == {"field_type": 41, "label": "Invoice no",
                                           "required": False}
    assert all(r.headers["authorization"] == "Token token=k" for r in sent)


def test_without_field_type_codes_fields_are_admin_steps_but_modules_are_not():
    def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"module_customization": {"id": 5}})

    c = FreshsalesClient(base_url="https://w.myfreshworks.com/crm/sales",
                         credentials=FreshsalesCredentials("k"),
                         http=httpx.Client(transport=httpx.MockTransport(handler)))
    with pytest.raises(UnsupportedByDialect, match="field_type_codes"):
        c.apply_schema_changes([field_change("Contact", "cf_x")])
    assert c.apply_schema_changes([{"action": "create_module", "object": "cm_x",
                                    "details": {}}])[0]["status"] == "created"


def test_field_type_codes_parse_and_name_a_bad_entry():
    assert parse_field_type_codes("text=1, number = 3") == {"text": 1, "number": 3}
    assert parse_field_type_codes(None) == {}
    with pytest.raises(ValueError, match="number='x'"):
        parse_field_type_codes("text=1,number=x")


# ---------------------------------------------------------------------- hooks
def test_serve_sandbox_demands_the_token_and_hands_out_client_env(tmp_path):
    served = serve_sandbox(org_schema(), tmp_path / "served.sqlite", None, "tok-123",
                           {"limit": "50", "faults": None})
    assert isinstance(served, ServedSandbox)
    assert served.token == "tok-123" and served.target_scheme == "freshsales"
    assert served.client_env["FRESHSALES_API_KEY"] == "tok-123"
    assert parse_field_type_codes(served.client_env["FRESHSALES_FIELD_TYPE_CODES"]) == \
        SANDBOX_FIELD_TYPE_CODES
    transport = SyncASGITransport(served.app)
    http = httpx.Client(transport=transport, base_url="http://127.0.0.1:1")
    try:
        for headers in ({}, {"Authorization": "Bearer tok-123"},
                        {"Authorization": "Token token=wrong"}):
            r = http.get("/api/settings/contacts/fields", headers=headers)
            assert r.status_code == 401
            assert r.json() == {"errors": {"code": 401, "message": ["Invalid API key"]}}
        ok = http.get("/api/settings/contacts/fields",
                      headers={"Authorization": "Token token=tok-123"})
        assert ok.status_code == 200 and ok.headers["x-ratelimit-total"] == "50"
    finally:
        http.close()
        transport.close()
        served.close()


def test_serve_sandbox_generates_a_token_when_none_is_given(tmp_path):
    served = serve_sandbox(org_schema(), tmp_path / "s.sqlite", None, None, {})
    try:
        assert len(served.token) >= 20
        assert served.client_env["FRESHSALES_API_KEY"] == served.token
    finally:
        served.close()


@pytest.mark.parametrize("options, named", [
    ({"limit": "lots"}, "limit='lots'"), ({"limit": "-1"}, "limit='-1'"),
    ({"plan": "platinum"}, "platinum"), ({"faults": "seed=1,bogus=2"}, "fault option"),
    ({"job_polls": "x"}, "job_polls"), ({"window": "soon"}, "window='soon'"),
])
def test_bad_serve_options_raise_value_errors_naming_them(tmp_path, options, named):
    with pytest.raises(ValueError, match=named):
        serve_sandbox(org_schema(), tmp_path / "bad.sqlite", None, "t", options)


def test_loopback_target_uses_plain_http_and_env_codes(monkeypatch):
    monkeypatch.setenv("FRESHSALES_API_KEY", "k")
    monkeypatch.setenv("FRESHSALES_FIELD_TYPE_CODES", "text=1")
    local = open_client("freshsales://127.0.0.1:8765", {})
    remote = open_client("freshsales://widgetz.myfreshworks.com", {"plan": "pro"})
    try:
        assert local.base_url == "http://127.0.0.1:8765"
        assert local.field_type_codes == {"text": 1}
        assert remote.base_url == "https://widgetz.myfreshworks.com/crm/sales"
        assert remote.capabilities.rate_limit.per_window == 2000
    finally:
        local.close()
        remote.close()


def test_legacy_plans_add_the_per_minute_cap(tmp_path):
    """freshsales.io legacy plans: 400 requests a minute on top of the hourly limit (API_NOTES.md
    3.7); the 401st request in a minute is a 429 whose Retry-After reaches the next minute."""
    clock = [30.0]
    served = serve_sandbox(org_schema(), tmp_path / "legacy.sqlite", None, "t",
                           {"plan": "legacy_blossom", "clock": lambda: clock[0]})
    transport = SyncASGITransport(served.app)
    http = httpx.Client(transport=transport, base_url="http://127.0.0.1:1",
                        headers={"Authorization": "Token token=t"})
    try:
        codes = [http.get("/api/selector/owners").status_code for _ in range(401)]
        assert codes[:400] == [200] * 400 and codes[400] == 429
        over = http.get("/api/selector/owners")
        assert over.status_code == 429 and 1 <= int(over.headers["retry-after"]) <= 30
        clock[0] = 61.0
        assert http.get("/api/selector/owners").status_code == 200
    finally:
        http.close()
        transport.close()
        served.close()
    growth = serve_sandbox(org_schema(), tmp_path / "growth.sqlite", None, "t",
                           {"plan": "growth"})
    try:
        assert growth.app.minute_ledger.limit == float("inf")
        assert growth.app.ledger.limit == 1000
    finally:
        growth.close()
