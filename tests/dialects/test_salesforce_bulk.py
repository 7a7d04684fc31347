"""Bulk API 2.0 ingest: SalesforceClient above its threshold against the sandbox's jobs (results
shuffled, so matching by key is proved), CSV cells, upload splitting, unprocessed rows, a job
whose outcome is unknown, and the threshold choice between collections and Bulk."""

from __future__ import annotations

import csv
import io

import pytest

from runtime.destinations.base import TransientError, WriteItem
from runtime.dialects import get_dialect
from runtime.dialects.salesforce import bulk_settings, open_sandbox
from runtime.dialects.salesforce.bulk import csv_value, parse_error

N = 5_000


@pytest.fixture
def sf(tmp_path):
    c = open_sandbox(get_dialect("salesforce").standard_schema(), tmp_path / "org.sqlite", None,
                     {})
    yield c
    c.close()


def _contacts(n: int, *, bad_every: int = 0, prefix: str = "P") -> list[WriteItem]:
    return [WriteItem(f"{prefix}{i}", f"{prefix}{i}",
                      {"LastName": None if bad_every and i % bad_every == 0 else f"Smith{i}",
                       "FirstName": f"Pat{i}"})
            for i in range(n)]


def _bulk_calls(sb) -> dict[str, int]:
    return {k: v for k, v in sb.calls.items() if "/jobs/ingest" in k}


def test_many_records_go_through_one_bulk_job_with_every_outcome_right(sf):
    items = _contacts(N, bad_every=97)
    bad = {it.key for it in items if it.record["LastName"] is None}
    results = sf.upsert("Contact", items)
    sb = sf.sandbox
    assert _bulk_calls(sb)["POST /jobs/ingest"] == 1
    assert _bulk_calls(sb)["PUT /jobs/ingest/{id}/batches"] == 1
    assert not any(k.startswith("PATCH /composite") for k in sb.calls)  # no collections
    assert sum(sb.calls.values()) <= 10  # vs 25 collection calls for 5,000 records
    by_key = {r.key: r for r in results}
    assert set(by_key) == {it.key for it in items}
    assert {k for k, r in by_key.items() if not r.ok} == bad
    assert all(by_key[k].code == "REQUIRED_FIELD_MISSING" and by_key[k].field == "LastName"
               for k in bad)
    # every success points at the record holding that external id (matched by key, not row)
    stored = sb.store.get("Contact", [r.dest_id for r in results if r.ok])
    assert all(stored[r.dest_id]["$external_id"] == r.key and r.created
               for r in results if r.ok)
    (jid,) = sb.bulk.job_ids()
    _, _, body = sb.bulk.route("GET", [jid, "successfulResults"], b"")
    rows = list(csv.DictReader(io.StringIO(body.decode(), newline="")))
    order = [row["Fmap_External_ID__c"] for row in rows]  # as the results list them
    assert order != sorted(order, key=lambda k: int(k[1:]))  # really shuffled
    again = sf.upsert("Contact", [it for it in items if it.key not in bad])
    assert all(r.ok and r.created is False for r in again)
    assert sb.store.count("Contact") == N - len(bad)


def test_below_the_threshold_uses_collections(sf):
    sf.upsert("Contact", _contacts(400))
    assert _bulk_calls(sf.sandbox) == {}
    assert sf.sandbox.calls["PATCH /composite/sobjects/Contact/Fmap_External_ID__c"] == 2
    assert sf.capabilities.bulk and sf.capabilities.bulk_batch_size == 10_000


def test_threshold_option():
    assert bulk_settings({"bulk_threshold": "off"}).threshold is None
    s = bulk_settings({"bulk_threshold": "500", "bulk_batch_size": "4000"})
    assert (s.threshold, s.batch_size) == (500, 4000)
    assert s.use_for("upsert", 500) and not s.use_for("upsert", 499)
    assert not s.use_for("create", 10_000)  # a re-sent insert would duplicate


def test_csv_cells_round_trip_and_null_clears(sf):
    tricky = 'line one\nline two, "quoted" ; semi — ünïcode\r\nend'
    items = [WriteItem(f"T{i}", f"T{i}", {"LastName": f"L{i}", "Description": tricky,
                                          "Title": "keep"}) for i in range(2_000)]
    first = sf.upsert("Contact", items)
    assert all(r.ok for r in first)
    rec = sf.get("Contact", [first[0].dest_id])[first[0].dest_id]
    assert rec["Description"] == tricky and rec["Title"] == "keep"
    # update by id: None clears (#N/A), a field left out stays as it was
    upd = [WriteItem(r.key, None, {"Description": None}, dest_id=r.dest_id) for r in first]
    res = sf.update("Contact", upd)
    assert all(r.ok for r in res)
    assert sf.sandbox.calls["POST /jobs/ingest"] == 2
    rec = sf.get("Contact", [first[5].dest_id])[first[5].dest_id]
    assert rec["Description"] is None and rec["Title"] == "keep"


def test_uploads_are_split_under_the_size_limit(sf):
    sf.bulk.max_upload_bytes = 40_000
    sf.sandbox.bulk.max_upload_bytes = 40_000
    items = _contacts(3_000)
    results = sf.upsert("Contact", items)
    assert all(r.ok for r in results) and len(results) == 3_000
    uploads = sf.sandbox.bulk.uploads
    assert len(uploads) > 1 and max(uploads) <= 40_000
    assert sf.sandbox.calls["POST /jobs/ingest"] == len(uploads)
    assert sf.sandbox.store.count("Contact") == 3_000


def test_unprocessed_rows_are_retryable_and_a_resend_completes(sf):
    sf.sandbox.bulk.fail_after = 1_000
    items = _contacts(2_500)
    results = sf.upsert("Contact", items)
    ok = [r for r in results if r.ok]
    rest = [r for r in results if not r.ok]
    assert len(ok) == 1_000 and len(rest) == 1_500
    assert all(r.code == "UNPROCESSED" and r.retryable for r in rest)
    sf.sandbox.bulk.fail_after = None
    keys = {r.key for r in rest}
    again = sf.upsert("Contact", [it for it in items if it.key in keys])
    assert all(r.ok and r.created for r in again)
    exts = [r["$external_id"] for r in sf.sandbox.store.list_records("Contact")]
    assert len(exts) == len(set(exts)) == 2_500


def test_a_job_whose_outcome_is_unknown_is_safe_to_resend(sf):
    clock = [0.0]
    sf.bulk.clock = lambda: clock[0]
    sf.bulk.sleep = lambda s: clock.__setitem__(0, clock[0] + max(s, 1.0))
    sf.bulk.poll_timeout = 30
    sf.sandbox.bulk.polls_in_progress = 10 ** 9  # the job never finishes while we wait
    items = _contacts(2_000)
    with pytest.raises(TransientError) as exc:
        sf.upsert("Contact", items)
    assert exc.value.maybe_committed
    # the job runs after all (the org processes it in the background) ...
    sf.sandbox.bulk.polls_in_progress = 0
    (jid,) = sf.sandbox.bulk.job_ids()
    sf.sandbox.bulk.route("GET", [jid], b"")
    assert sf.sandbox.store.count("Contact") == 2_000
    # ... and re-sending the same batch gets that job's answer: created, not sent again
    results = sf.upsert("Contact", items)
    assert all(r.ok and r.created for r in results) and len(results) == 2_000
    assert sf.sandbox.calls["POST /jobs/ingest"] == 1 and sf.bulk_unsettled == {}
    # with no job to ask, a re-send updates instead of duplicating
    results = sf.upsert("Contact", items)
    assert all(r.ok and r.created is False for r in results)
    assert sf.sandbox.calls["POST /jobs/ingest"] == 2
    assert sf.sandbox.store.count("Contact") == 2_000


def test_bulk_delete(sf):
    created = sf.upsert("Contact", _contacts(2_100))
    ids = [r.dest_id for r in created]
    res = sf.delete("Contact", ids + ["003Hb000000zzzzIAA"])
    assert sf.sandbox.calls["POST /jobs/ingest"] == 2
    assert sum(r.ok for r in res) == 2_100 and sf.sandbox.store.count("Contact") == 0
    assert {r.key for r in res if not r.ok} == {"003Hb000000zzzzIAA"}


def test_invalid_column_fails_rows_without_retrying(sf):
    items = [WriteItem(f"X{i}", f"X{i}", {"LastName": "L", "Nope__c": 1}) for i in range(2_000)]
    results = sf.upsert("Contact", items)
    assert all(not r.ok and r.code == "INVALID_BATCH" and not r.retryable for r in results)
    assert "Nope__c" in results[0].error


@pytest.mark.parametrize("value,cell", [
    (None, "#N/A"), ("", "#N/A"), (True, "true"), (False, "false"), (3, "3"),
    (1e-7, "0.0000001"), (2.5, "2.5"), (["A", "B"], "A;B"), ("a,b", "a,b"),
], ids=["none", "empty", "true", "false", "int", "tiny-float", "float", "multi", "comma"])
def test_csv_value(value, cell):
    assert csv_value(value) == cell


def test_parse_error_and_csv_quoting():
    assert parse_error("REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --"
                       ) == ("REQUIRED_FIELD_MISSING", "Required fields are missing: [LastName]",
                             "LastName")
    assert parse_error("DUPLICATE_VALUE:duplicate value found: x:  --")[0] == "DUPLICATE_VALUE"
    from runtime.dialects.salesforce.bulk import _to_csv

    text = _to_csv(["A", "B"], [['x "y"', "1\n2"]])
    assert list(csv.reader(io.StringIO(text, newline=""))) == [["A", "B"], ['x "y"', "1\n2"]]
