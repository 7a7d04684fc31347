"""The Freshsales client reads an entity's field metadata (``GET settings/{e}/fields``, a request
against the hourly limit) once, whichever needs it first: the overlay of a client given no
schema (``_refresh_schema``) or the choice ids a custom dropdown lacks (``_learn_choices``). And
``FreshsalesAPIError`` is the shared :class:`~runtime.dialects._http.APIError`, as the other
dialects' errors are. Counted on the wire against the in-process sandbox."""

from __future__ import annotations

import httpx
import pytest

from runtime.destinations.base import FatalError, WriteItem
from runtime.dialects import get_dialect
from runtime.dialects._http import APIError, present
from runtime.dialects.freshsales import open_sandbox
from runtime.dialects.freshsales.auth import FreshsalesCredentials
from runtime.dialects.freshsales.client import FreshsalesAPIError, FreshsalesClient
from runtime.dialects.freshsales.sandbox import SANDBOX_FIELD_TYPE_CODES, SyncASGITransport
from runtime.schema.model import FieldSchema, FieldType, SystemSchema


def org_schema() -> SystemSchema:
    """A Contact with a dropdown the account has no choices for (so a label cannot be turned
    into an id from any metadata) beside one it has choices for."""
    base = get_dialect("freshsales").standard_schema()
    base.object("Contact").fields += [
        FieldSchema(api_name="cf_gender", type=FieldType.picklist, custom=True, label="Gender",
                    picklist_values=["Male", "Female"]),
        FieldSchema(api_name="cf_tier", type=FieldType.picklist, custom=True, label="Tier")]
    return base


@pytest.fixture
def org(tmp_path):
    """The sandbox (through the client ``open_sandbox`` makes, which owns it)."""
    c = open_sandbox(org_schema(), tmp_path / "org.sqlite", None, {})
    yield c.sandbox
    c.close()


def counted_client(sandbox, schema: SystemSchema | None) -> tuple[FreshsalesClient, list[str]]:
    """A client over ``sandbox`` and the path of every request it sends."""
    seen: list[str] = []
    http = httpx.Client(transport=SyncASGITransport(sandbox),
                        event_hooks={"request": [lambda r: seen.append(r.url.path)]})
    client = FreshsalesClient(
        base_url="http://freshsales-sandbox.invalid/crm/sales",
        credentials=FreshsalesCredentials(sandbox.api_key, source="sandbox"), http=http,
        schema=schema, sleep=lambda s: None, poll_interval=0.0, owns=(http,),
        field_type_codes=SANDBOX_FIELD_TYPE_CODES)
    return client, seen


def reads(seen: list[str], entity: str) -> int:
    return sum(1 for p in seen if p.endswith(f"/api/settings/{entity}/fields"))


def contact(key: str, **fields) -> WriteItem:
    return WriteItem(key, f"ext-{key}", {"last_name": f"Patient {key}", **fields})


def test_a_schemaless_client_reads_an_entitys_fields_once_for_overlay_and_choices(org):
    """No schema: the first write overlays the account's Contact fields (one read); the
    dropdown without choices then asks for choice ids, which that same read answers. Before,
    each asked the API again."""
    client, seen = counted_client(org, schema=None)
    with client:
        results = client.create("Contact", [contact("1", cf_gender="Female", cf_tier="7"),
                                            contact("2", cf_gender="Male", cf_tier="8")])
        assert [r.ok for r in results] == [True, True]
        got = client.get("Contact", [r.dest_id for r in results])
    assert reads(seen, "contacts") == 1
    # the read served both needs: a label went as its choice id, a bare id as itself
    assert [got[r.dest_id]["cf_gender"] for r in results] == ["Female", "Male"]
    assert [str(got[r.dest_id]["cf_tier"]) for r in results] == ["7", "8"]


def test_after_a_schema_change_the_refreshed_read_also_serves_the_choice_lookup(org):
    """``apply_schema_changes`` reads the changed entity's fields again (the old read is stale);
    a write to the new dropdown, which has no choices yet, uses that read instead of a third."""
    client, seen = counted_client(org, schema=org.schema())
    with client:
        out = client.apply_schema_changes([{"action": "create_field", "object": "Deal",
                                            "field": "cf_flag", "type": "picklist",
                                            "details": {"label": "Flag"}}])
        assert out[0]["status"] == "created", out
        assert reads(seen, "deals") == 1
        r = client.create("Deal", [WriteItem("d1", None, {"name": "After", "amount": 10,
                                                          "cf_flag": 3})])[0]
        assert r.ok, r
        assert reads(seen, "deals") == 1
        # a label is refused per record (no request), and still no further metadata read
        bad = client.create("Deal", [WriteItem("d2", None, {"name": "X", "amount": 10,
                                                            "cf_flag": "Red"})])[0]
    assert (bad.ok, bad.code, bad.field) == (False, "UNKNOWN_CHOICES", "cf_flag")
    assert reads(seen, "deals") == 1


def test_a_refused_metadata_read_is_not_repeated_per_record(org):
    """An entity the account lacks answers 404 on its fields call: remembered, not asked again
    for every record (each would spend a request of the hourly limit)."""
    client, seen = counted_client(org, schema=None)
    with client:
        assert client._account_object("pets") is None
        assert client._account_object("pets") is None
    assert reads(seen, "pets") == 1


# ---------------------------------------------------------------------- the error class
def test_freshsales_api_error_is_the_shared_api_error_with_its_own_fields():
    exc = FreshsalesAPIError("GET /api/settings/pets/fields", 404,
                             ["Module not found", "check the name"])
    assert isinstance(exc, APIError) and isinstance(exc, FatalError)
    assert (exc.endpoint, exc.status, exc.code) == ("GET /api/settings/pets/fields", 404, None)
    assert exc.messages == ["Module not found", "check the name"]
    # the text it always had: no gap where a code would go
    assert str(exc) == "GET /api/settings/pets/fields: HTTP 404 Module not found; check the name"
    assert str(FreshsalesAPIError("POST /api/x", 403, [])) == "POST /api/x: HTTP 403"


def test_a_refusal_on_the_wire_is_caught_as_an_api_error_and_keeps_its_status(org):
    """What callers that catch the shared class see: ``present`` (the metadata_bundle contract)
    leaves a 404 out and lets any other refusal through, for Freshsales as for the others."""
    client, _ = counted_client(org, schema=None)
    with client:
        with pytest.raises(APIError) as caught:
            client.metadata("pets")
        assert isinstance(caught.value, FreshsalesAPIError) and caught.value.status == 404
        assert list(present(["Contact", "pets"], client.metadata, APIError)) == ["Contact"]

        def forbidden(name: str):
            raise FreshsalesAPIError(f"GET /api/settings/{name}/fields", 403, ["forbidden"])

        with pytest.raises(FreshsalesAPIError, match="HTTP 403 forbidden"):
            present(["Contact"], forbidden, APIError)
