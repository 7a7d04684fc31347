"""Lead and note field metadata: ``fmap schema pull`` reads ``GET /api/v1/leadFields`` and
``/api/v1/noteFields`` page after page (their tokens counted like any call), the emulator answers
both as openapi-v1.yaml documents them (a lead's custom fields are the deal's, by the same hash
keys), the loader reads the spec's own examples, and files are still said to have no fields."""

from __future__ import annotations

import json

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from fmap.cli import app
from runtime.destinations.base import User
from runtime.dialects import get_dialect
from runtime.dialects.pipedrive import client as pd_client
from runtime.dialects.pipedrive import open_sandbox
from runtime.dialects.pipedrive.auth import PipedriveCredentials
from runtime.dialects.pipedrive.client import PipedriveClient, token_cost
from runtime.dialects.pipedrive.sandbox import field_code
from runtime.schema.model import FieldType

REGION = {"action": "create_field", "object": "Deal", "field": "Region", "type": "picklist",
          "details": {"values": ["North", "South"]}}


@pytest.fixture
def org(tmp_path):
    """A sandbox org (file ``org.sqlite``) with a custom deal field ``Region`` created through
    ``POST /api/v2/dealFields``, as an admin would, so it is the org's and not the schema's."""
    c = open_sandbox(get_dialect("pipedrive").standard_schema(), tmp_path / "org.sqlite",
                     [User("21000001", "pm@example.com", "PM")], {"clock": "virtual"})
    assert c.apply_schema_changes([REGION])[0]["status"] == "created"
    c.seen = []
    c._http.event_hooks["request"].append(
        lambda r: c.seen.append((r.url.path, dict(r.url.params), r.headers)))
    yield c
    c.close()


def load(bundle):
    return get_dialect("pipedrive").load_metadata(bundle, source_name="snap.json")


# ---------------------------------------------------------------------- fmap schema pull
def test_schema_pull_gives_person_lead_and_note_fields(org, tmp_path, monkeypatch):
    org.close()  # the CLI opens the same org file
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "snap.json"
    res = CliRunner().invoke(app, [
        "schema", "pull", f"sandbox:pipedrive?db={tmp_path / 'org.sqlite'}",
        "-m", "Person", "-m", "Lead", "-m", "Note", "-m", "File", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "has no field metadata for File" in res.output
    assert "for Lead" not in res.output and "for Note" not in res.output
    bundle = json.loads(out.read_text())
    assert sorted(bundle["objects"]) == ["Lead", "Note", "Person"]
    assert bundle["no_field_metadata"] == ["File"]
    schema = load(bundle)
    assert schema.object("Person").field("name").required
    lead = schema.object("Lead")
    assert lead.field("title").required and lead.field("title").type == FieldType.text
    assert lead.field("person_id").lookup_targets == ["Person"]
    assert lead.field("organization_id").lookup_targets == ["Organization"]
    assert lead.field("value").type == FieldType.currency
    note = schema.object("Note")
    assert note.field("content").required and note.field("content").type == FieldType.textarea
    assert note.field("deal_id").lookup_targets == ["Deal"]
    assert note.field("lead_id").lookup_targets == ["Lead"]
    assert not any(f.custom for f in note.fields)


def test_a_custom_deal_field_is_a_lead_field_by_the_same_hash_key(org):
    schema = load(org.metadata_bundle(["Deal", "Lead"]))
    deal, lead = schema.object("Deal").field("Region"), schema.object("Lead").field("Region")
    assert lead is not None and lead.custom and lead.type == FieldType.picklist
    assert lead.vendor["key"] == deal.vendor["key"] == field_code("Deal", "Region")
    assert lead.picklist_values == ["North", "South"]
    assert lead.vendor["options"] == deal.vendor["options"]
    assert [f.api_name for f in schema.object("Lead").fields if f.custom] == ["Region"]


# ---------------------------------------------------------------------- pagination, tokens
def test_lead_fields_are_read_page_after_page_with_their_tokens_counted(org, monkeypatch):
    whole = org.metadata_bundle(["Lead"])["objects"]["Lead"]["data"]
    assert len(whole) > 10
    monkeypatch.setattr(pd_client, "PAGE_LIMIT", 4)
    org.seen.clear()
    spent, ledger = org.tokens_spent, org.sandbox.ledger.spent
    paged = org.metadata_bundle(["Lead"])["objects"]["Lead"]
    assert paged["data"] == whole  # every field once, in order
    assert paged["additional_data"]["pagination"]["more_items_in_collection"] is False
    starts = [int(q["start"]) for p, q, _ in org.seen if p == "/api/v1/leadFields"]
    pages = -(-len(whole) // 4)
    assert starts == list(range(0, 4 * pages, 4)) and pages > 1
    assert all(q["limit"] == "4" for p, q, _ in org.seen)
    cost = token_cost("v1", "GET", "/leadFields")
    assert cost == 20  # x-token-cost of getLeadFields
    assert org.tokens_spent - spent == org.sandbox.ledger.spent - ledger == cost * pages


def test_note_fields_send_no_undocumented_parameters(org):
    """getNoteFields declares no query parameters: one page, asked for plainly."""
    org.seen.clear()
    fields = org.metadata_bundle(["Note"])["objects"]["Note"]["data"]
    assert [q for p, q, _ in org.seen] == [{}]
    assert [p for p, _, _ in org.seen] == ["/api/v1/noteFields"]
    assert org.tokens_spent >= token_cost("v1", "GET", "/noteFields") == 20
    assert fields[1]["key"] == "content" and fields[1]["mandatory_flag"] is True


def test_note_fields_follow_a_reply_that_says_there_is_more():
    """A server that pages getNoteFields anyway is followed with ``start`` to the end."""
    rows = [{"id": i, "key": f"k{i}", "name": f"K{i}", "field_type": "varchar"}
            for i in range(1, 6)]
    seen: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(dict(request.url.params))
        start = int(request.url.params.get("start", 0))
        page = rows[start:start + 2]
        return httpx.Response(200, json={"success": True, "data": page, "additional_data": {
            "pagination": {"start": start, "limit": 2,
                           "more_items_in_collection": start + 2 < len(rows)}}})

    client = PipedriveClient(base_url="https://x.pipedrive.com",
                             credentials=PipedriveCredentials(api_token="t"),
                             transport=httpx.MockTransport(handler), sleep=lambda s: None)
    try:
        bundle = client.metadata_bundle(["Note"])
    finally:
        client.close()
    assert seen == [{}, {"start": "2"}, {"start": "4"}]
    assert [f.api_name for f in load(bundle).object("Note").fields] == [r["key"] for r in rows]
    assert client.tokens_spent == 3 * 20


# ---------------------------------------------------------------------- the emulator over HTTP
@pytest.fixture
def api(org):
    http = httpx.Client(transport=org._http._transport, base_url="http://pd.invalid",
                        headers={"x-api-token": org.sandbox.token})
    yield http
    http.close()


@pytest.mark.parametrize("path", ["/api/v1/leadFields", "/api/v1/noteFields"])
def test_the_fields_endpoints_need_the_token(api, path):
    r = api.get(path, headers={"x-api-token": ""})
    assert r.status_code == 401 and r.json()["success"] is False
    assert api.get(path, headers={"x-api-token": "wrong"}).status_code == 401


@pytest.mark.parametrize("path", ["/api/v1/leadFields", "/api/v1/noteFields"])
def test_the_emulator_pages_as_the_examples_show(api, path):
    first = api.get(path, params={"start": 0, "limit": 3})
    assert first.status_code == 200
    body = first.json()
    assert len(body["data"]) == 3 and [f["id"] for f in body["data"]] == [1, 2, 3]
    assert body["additional_data"] == {"pagination": {
        "start": 0, "limit": 3, "more_items_in_collection": True}}  # no next_start
    whole = api.get(path)  # the default page (100) holds them all
    total = len(whole.json()["data"])
    last = api.get(path, params={"start": total - 1, "limit": 3})
    assert len(last.json()["data"]) == 1
    assert last.json()["additional_data"]["pagination"]["more_items_in_collection"] is False
    left = [int(r.headers["x-daily-ratelimit-token-remaining"]) for r in (whole, last)]
    assert left[0] - left[1] == 20  # x-token-cost, per page


@pytest.mark.parametrize("params", [{"start": "x"}, {"limit": "0"}, {"start": "-1"}])
def test_bad_paging_is_a_400_in_the_error_envelope(api, params):
    r = api.get("/api/v1/leadFields", params=params)
    assert r.status_code == 400
    assert r.json()["success"] is False and "start" in r.json()["error"]


def test_only_get_is_served(api):
    assert api.post("/api/v1/leadFields", json={"name": "X"}).status_code == 404
    assert api.get("/api/v2/leadFields").status_code == 404  # a v1 endpoint only


# ---------------------------------------------------------------------- the specs
@pytest.fixture(scope="module")
def v1_ops(shared_dir):
    spec = shared_dir / "crm" / "specs" / "pipedrive" / "openapi-v1.yaml"
    if not spec.is_file():
        pytest.skip("openapi-v1.yaml is absent from ../shared/crm/specs/pipedrive")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    paths = yaml.load(spec.read_text("utf-8"), Loader=loader)["paths"]
    return {p: paths[p]["get"] for p in ("/leadFields", "/noteFields")}


def _example(op):
    return op["responses"]["200"]["content"]["application/json"]["example"]


def _any_listed_type(schema):
    """The specs type a field's ``field_type`` in two ``allOf`` branches: a short enum, and
    "all possible field types". Their intersection has no type for a note's ``deal_id`` /
    ``lead_id`` or a lead's ``was_seen`` (``deal``, ``lead``, ``boolean`` are in the second list
    only), so ``field_type`` is checked against both lists together."""
    listed: set[str] = set()

    def walk(x, rewrite):
        if isinstance(x, list):
            return [walk(v, rewrite) for v in x]
        if not isinstance(x, dict):
            return x
        out = {k: walk(v, rewrite) for k, v in x.items()}
        props = out.get("properties")
        if isinstance(props, dict) and "field_type" in props:
            ft = x["properties"]["field_type"]
            listed.update(ft.get("enum") or [v for b in ft.get("allOf", [])
                                             for v in b.get("enum", [])])
            if rewrite:
                props["field_type"] = {"type": "string", "enum": sorted(listed)}
        return out

    walk(schema, False)
    return walk(schema, True)


def test_the_emulators_replies_match_the_response_schemas(api, v1_ops):
    validator = pytest.importorskip("openapi_schema_validator")
    for path, op in v1_ops.items():
        schema = _any_listed_type(op["responses"]["200"]["content"]["application/json"]
                                  ["schema"])
        for params in ({}, {"start": 0, "limit": 2}):
            validator.validate(api.get(f"/api/v1{path}", params=params).json(), schema,
                               cls=validator.OAS30Validator)


def test_the_specs_examples_load(v1_ops):
    """The examples as Pipedrive documents them: a custom field is known by its hash key, not
    by ``edit_flag`` (the note's ``pinned_to_deal_flag`` has one and is standard)."""
    schema = load({"objects": {"Lead": _example(v1_ops["/leadFields"]),
                               "Note": _example(v1_ops["/noteFields"])}})
    lead = schema.object("Lead")
    assert lead.field_names() == ["title", "Customer_Type"]
    ct = lead.field("Customer_Type")
    assert ct.custom and ct.required and ct.vendor["key"] == "9dc80c50d78a15643bfc4ca79d76156a73a1ca0e"
    assert ct.vendor["options"] == {"Private person": 190, "Company": 191, "Government": 192}
    note = schema.object("Note")
    assert note.field_names() == ["content", "pinned_to_deal_flag"]
    pinned = note.field("pinned_to_deal_flag")
    assert not pinned.custom and pinned.required and pinned.picklist_values == ["Yes", "No"]
    assert note.field("content").required and note.field("content").type == FieldType.textarea
