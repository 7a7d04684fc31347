"""Bulk API 2.0 jobs outlive the emulator that took them: a second :class:`SalesforceSandbox` over
the same SQLite file (a restarted ``fmap sandbox serve``, or a resumed run opening the same
``db=``) answers for the jobs the first one created, byte for byte, until the documented 7-day
lifespan ends, after which a job answers 404 like one that never existed."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from runtime.dialects import get_dialect
from runtime.dialects.salesforce.sandbox import SalesforceSandbox

TOKEN = "persist-token"
EXT = "Fmap_External_ID__c"
UPSERT = {"object": "Contact", "operation": "upsert", "externalIdFieldName": EXT,
          "contentType": "CSV", "lineEnding": "LF"}
KINDS = ("successfulResults", "failedResults", "unprocessedrecords")


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def _sandbox(path: Path, **kw) -> SalesforceSandbox:
    return SalesforceSandbox(get_dialect("salesforce").standard_schema(), path, token=TOKEN, **kw)


def _call(sb: SalesforceSandbox, method: str, path: str, body: bytes | dict = b""
          ) -> tuple[int, bytes]:
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    status, _, out = sb.handle(method, f"/services/data/v62.0/jobs/ingest{path}", {},
                               {"authorization": f"Bearer {TOKEN}"}, body)
    return status, out


def _rows(n: int, prefix: str = "E") -> bytes:
    lines = [f"{EXT},LastName,FirstName"]
    lines += [f"{prefix}{i},{'' if i % 9 == 0 else f'Smith{i}'},Pat{i}" for i in range(n)]
    return ("\n".join(lines) + "\n").encode()


def _open_job(sb: SalesforceSandbox, data: bytes, *, close: bool = True) -> str:
    status, out = _call(sb, "POST", "", UPSERT)
    assert status == 200, out
    jid = json.loads(out)["id"]
    assert _call(sb, "PUT", f"/{jid}/batches", data)[0] == 201
    if close:
        assert _call(sb, "PATCH", f"/{jid}", {"state": "UploadComplete"})[0] == 200
    return jid


def _answers(sb: SalesforceSandbox, jid: str) -> dict[str, bytes]:
    out = {"info": _call(sb, "GET", f"/{jid}")[1]}
    for kind in KINDS:
        status, body = _call(sb, "GET", f"/{jid}/{kind}")
        assert status == 200, body
        out[kind] = body
    return out


def _exts(sb: SalesforceSandbox) -> list[str]:
    return [r["$external_id"] for r in sb.store.list_records("Contact")]


def test_a_job_closed_by_one_sandbox_is_run_and_answered_by_the_next(tmp_path):
    db = tmp_path / "org.sqlite"
    first = _sandbox(db)
    jid = _open_job(first, _rows(450))
    first.close()  # the served sandbox restarts before anyone polled

    second = _sandbox(db)
    try:
        polled = json.loads(_call(second, "GET", f"/{jid}")[1])
        assert polled["state"] == "InProgress"
        done = json.loads(_call(second, "GET", f"/{jid}")[1])
        assert done["state"] == "JobComplete"
        assert (done["numberRecordsProcessed"], done["numberRecordsFailed"]) == (450, 50)
        ok = list(csv.DictReader(io.StringIO(_call(second, "GET", f"/{jid}/successfulResults")
                                             [1].decode())))
        assert len(ok) == 400 and all(r["sf__Created"] == "true" for r in ok)
        assert sorted(_exts(second)) == sorted(r[EXT] for r in ok)
        # a job of the new sandbox gets an id of its own, though it draws the same random ids
        other = _open_job(second, _rows(3, "N"))
        assert other != jid and second.bulk.job_ids() == [jid, other]
    finally:
        second.close()


def test_every_answer_about_a_finished_job_is_the_same_after_a_restart(tmp_path):
    db = tmp_path / "org.sqlite"
    first = _sandbox(db)
    first.bulk.fail_after = 200  # some rows failed, some processed, the rest unprocessed
    jid = _open_job(first, _rows(450))
    _call(first, "GET", f"/{jid}")
    before = _answers(first, jid)
    assert json.loads(before["info"])["state"] == "Failed"
    unprocessed = before["unprocessedrecords"].decode().splitlines()
    assert len(unprocessed) == 1 + 250
    first.close()

    second = _sandbox(db)
    try:
        assert _answers(second, jid) == before
        assert len(_exts(second)) == 200 - 200 // 9 - 1  # the job did not run a second time
        assert _call(second, "DELETE", f"/{jid}")[0] == 204
    finally:
        second.close()
    third = _sandbox(db)
    try:
        status, body = _call(third, "GET", f"/{jid}")
        assert status == 404 and json.loads(body)[0]["errorCode"] == "NOT_FOUND"
    finally:
        third.close()


def test_an_aborted_job_keeps_its_upload_as_unprocessed_rows_across_a_restart(tmp_path):
    db = tmp_path / "org.sqlite"
    first = _sandbox(db)
    jid = _open_job(first, _rows(5), close=False)
    assert _call(first, "PATCH", f"/{jid}", {"state": "Aborted"})[0] == 200
    first.close()
    second = _sandbox(db)
    try:
        rows = list(csv.reader(io.StringIO(_call(second, "GET", f"/{jid}/unprocessedrecords")
                                           [1].decode())))
        assert rows[0] == [EXT, "LastName", "FirstName"] and len(rows) == 6
        assert _exts(second) == []
    finally:
        second.close()


def test_jobs_are_deleted_after_seven_days_whatever_their_state(tmp_path):
    clock = Clock()
    db = tmp_path / "org.sqlite"
    first = _sandbox(db, clock=clock)
    done = _open_job(first, _rows(10))
    _call(first, "GET", f"/{done}")
    _call(first, "GET", f"/{done}")
    clock.now += timedelta(days=1)
    open_ = _open_job(first, _rows(10, "O"), close=False)
    created = json.loads(_call(first, "GET", f"/{open_}")[1])["createdDate"]
    assert created == "2025-03-02T09:00:00.000+0000"  # the sandbox's clock, as Salesforce writes it
    first.close()

    second = _sandbox(db, clock=clock)
    try:
        clock.now += timedelta(days=6) - timedelta(seconds=1)  # the first job is 7 days old, less 1 s
        assert _call(second, "GET", f"/{done}/successfulResults")[0] == 200
        clock.now += timedelta(seconds=2)
        for path in (f"/{done}", f"/{done}/successfulResults"):
            status, body = _call(second, "GET", path)
            assert status == 404 and json.loads(body)[0]["errorCode"] == "NOT_FOUND"
        assert second.bulk.job_ids() == [open_]
        clock.now += timedelta(days=1)
        assert _call(second, "PATCH", f"/{open_}", {"state": "UploadComplete"})[0] == 404
        assert second.bulk.job_ids() == []
        assert len(_exts(second)) == 10 - 2  # what the expired job wrote stays
    finally:
        second.close()


@pytest.mark.parametrize("data", [b"\xff\xfeLastName\n\x00\x81\n", b'LastName\n"x' + b"y" * 140_000],
                         ids=["not-utf8", "huge-unterminated-field"])
def test_an_unreadable_upload_fails_the_job_instead_of_raising(tmp_path, data):
    sb = _sandbox(tmp_path / "org.sqlite")
    sb.bulk.polls_in_progress = 0
    try:
        status, out = _call(sb, "POST", "", {"object": "Contact", "operation": "insert"})
        jid = json.loads(out)["id"]
        assert _call(sb, "PUT", f"/{jid}/batches", data)[0] == 201
        _call(sb, "PATCH", f"/{jid}", {"state": "UploadComplete"})
        info = json.loads(_call(sb, "GET", f"/{jid}")[1])
        assert info["state"] == "Failed" and info["errorMessage"].startswith("InvalidBatch")
        assert _call(sb, "GET", f"/{jid}/unprocessedrecords")[0] == 200
        assert _exts(sb) == []
    finally:
        sb.close()


def test_a_restarted_served_sandbox_answers_for_its_jobs(tmp_path):
    """Over loopback: the job is closed, the server is stopped and started again over the same
    file, and the client's poll gets the job's results instead of a 404."""
    import httpx

    from tests.dialects.served import serve

    auth = {"Authorization": "Bearer e2e-loopback-token"}

    def url(port: int, path: str = "") -> str:
        return f"http://127.0.0.1:{port}/services/data/v62.0/jobs/ingest{path}"

    with serve(tmp_path, "salesforce") as port:
        jid = httpx.post(url(port), json=UPSERT, headers=auth).json()["id"]
        r = httpx.put(url(port, f"/{jid}/batches"), content=_rows(30),
                      headers={**auth, "Content-Type": "text/csv"})
        assert r.status_code == 201
        r = httpx.patch(url(port, f"/{jid}"), json={"state": "UploadComplete"}, headers=auth)
        assert r.status_code == 200
    with serve(tmp_path, "salesforce") as port:
        assert httpx.get(url(port, f"/{jid}")).status_code == 401  # still no answer without auth
        states = [httpx.get(url(port, f"/{jid}"), headers=auth).json()["state"]
                  for _ in range(2)]
        assert states == ["InProgress", "JobComplete"]
        ok = httpx.get(url(port, f"/{jid}/successfulResults"), headers=auth)
        assert ok.status_code == 200 and len(ok.text.splitlines()) == 1 + 30 - 4


# ---------------------------------------------------------------------- the connector
N = 2_000


class Killed(BaseException):
    """Stands for SIGKILL: no handler in the client or the executor catches it."""


@pytest.fixture
def sf(tmp_path):
    from runtime.dialects.salesforce import open_sandbox

    c = open_sandbox(get_dialect("salesforce").standard_schema(), tmp_path / "org.sqlite", None,
                     {})
    yield c
    c.close()


def _contacts(n: int = N) -> list:
    from runtime.destinations.base import WriteItem

    return [WriteItem(f"C{i}", f"C{i}", {"LastName": f"Smith{i}", "FirstName": f"Pat{i}"})
            for i in range(n)]


def _lose_the_close(sb: SalesforceSandbox, then: type[BaseException] | None = None) -> None:
    """The next ``UploadComplete`` is applied and its answer lost (or the process dies there)."""
    from runtime.dialects.salesforce.sandbox import DroppedConnection

    route = sb.bulk.route
    armed = [True]

    def lossy(method, rest, body):
        out = route(method, rest, body)
        if armed and method == "PATCH" and b"UploadComplete" in body:
            armed.clear()
            raise (then or DroppedConnection)("the close's answer was lost")
        return out

    sb.bulk.route = lossy


def _run_in_background(sb: SalesforceSandbox) -> None:
    """What the org does with closed jobs nobody polls: run them."""
    for jid in sb.bulk.job_ids():
        while json.loads(sb.bulk.route("GET", [jid], b"")[2])["state"] in (
                "UploadComplete", "InProgress"):
            pass


def test_a_lost_close_is_settled_from_the_job_it_closed(sf):
    from runtime.destinations.base import TransientError

    items = _contacts()
    _lose_the_close(sf.sandbox)
    with pytest.raises(TransientError) as exc:
        sf.upsert("Contact", items)
    assert exc.value.maybe_committed and len(sf.bulk_unsettled) == 1
    results = sf.upsert("Contact", items)  # the executor's re-send of the batch
    assert len(results) == N and all(r.ok and r.created for r in results)
    assert sf.sandbox.calls["POST /jobs/ingest"] == 1  # the records were written once
    assert len(set(_exts(sf.sandbox))) == len(_exts(sf.sandbox)) == N
    assert sf.bulk_unsettled == {}


def test_a_delete_whose_close_was_lost_is_not_sent_into_entity_is_deleted(sf):
    from runtime.destinations.base import TransientError

    ids = [r.dest_id for r in sf.upsert("Contact", _contacts())]
    _lose_the_close(sf.sandbox)
    with pytest.raises(TransientError):
        sf.delete("Contact", ids)
    _run_in_background(sf.sandbox)
    assert sf.sandbox.store.count("Contact") == 0
    results = sf.delete("Contact", ids)
    assert all(r.ok for r in results) and {r.key for r in results} == set(ids)


def test_rows_the_job_did_not_write_as_they_are_now_are_sent_again(sf):
    from runtime.destinations.base import TransientError, WriteItem

    items = _contacts()
    sf.sandbox.bulk.fail_after = 1_000
    _lose_the_close(sf.sandbox)
    with pytest.raises(TransientError):
        sf.upsert("Contact", items)
    sf.sandbox.bulk.fail_after = None
    changed = [WriteItem(it.key, it.external_id, {**it.record, "Title": "Dr"})
               if it.key == "C1" else it for it in items]
    results = sf.upsert("Contact", changed)
    assert len(results) == N and all(r.ok for r in results)
    assert sf.sandbox.calls["POST /jobs/ingest"] == 2 and sf.sandbox.bulk.uploads[-1] < 40_000
    assert len(set(_exts(sf.sandbox))) == len(_exts(sf.sandbox)) == N
    c1 = next(r for r in sf.sandbox.store.list_records("Contact") if r["$external_id"] == "C1")
    assert c1["Title"] == "Dr"


@pytest.mark.parametrize("gone", ["deleted", "expired"])
def test_a_job_that_is_gone_is_settled_by_sending_again(sf, gone):
    from runtime.destinations.base import TransientError

    clock = Clock()
    sf.sandbox.clock = clock
    items = _contacts()
    _lose_the_close(sf.sandbox)
    with pytest.raises(TransientError):
        sf.upsert("Contact", items)
    (jid,) = sf.sandbox.bulk.job_ids()
    if gone == "deleted":
        sf.sandbox.bulk.route("DELETE", [jid], b"")
    else:
        clock.now += timedelta(days=8)
    results = sf.upsert("Contact", items)
    assert len(results) == N and all(r.ok and r.created for r in results)
    assert sf.sandbox.calls["POST /jobs/ingest"] == 2 and sf.bulk_unsettled == {}
    assert len(set(_exts(sf.sandbox))) == len(_exts(sf.sandbox)) == N


@pytest.mark.parametrize("org_ran_it", [False, True], ids=["job-pending", "job-ran"])
def test_killed_after_closing_a_job_then_resumed_by_a_new_process(tmp_path, org_ran_it):
    """The process dies once the org accepted the close; a new one (no memory of the job) opens
    the same file and sends the batch again: 0 duplicates, 0 missing, whether the org ran the
    dead process's job before the resume or runs it after."""
    from runtime.dialects.salesforce import open_sandbox

    schema = get_dialect("salesforce").standard_schema()
    items = _contacts()
    dead = open_sandbox(schema, tmp_path / "org.sqlite", None, {})
    _lose_the_close(dead.sandbox, then=Killed)
    with pytest.raises(Killed):
        dead.upsert("Contact", items)
    dead.close()
    resumed = open_sandbox(schema, tmp_path / "org.sqlite", None, {})
    try:
        sb = resumed.sandbox
        if org_ran_it:
            _run_in_background(sb)
            found = resumed.find_by_external_id("Contact", [it.key for it in items])
            assert len(found) == N  # what the executor settles by on resume
        results = resumed.upsert("Contact", items)
        assert len(results) == N and all(r.ok for r in results)
        assert all(r.created is not org_ran_it for r in results)
        _run_in_background(sb)  # the dead process's job, if it had not run
        assert len(set(_exts(sb))) == len(_exts(sb)) == N
    finally:
        resumed.close()


# ---------------------------------------------------------------------- a run, killed and resumed
def _migrate(compiled, base: Path, sample: Path, resume: str | None, kill_at: int | None):
    """One incarnation of ``fmap run`` into ``sandbox:salesforce`` over ``base/org.sqlite`` with
    Bulk for batches of 5 and more; ``kill_at``: the process dies once the org accepted the
    close of that many-th job."""
    from runtime.executor import LoadOptions, RunOptions, run_migration
    from runtime.sources import open_source
    from runtime.state import StateStore
    from runtime.targets import open_target

    users = Path(__file__).resolve().parents[2] / "mappings" / "sandbox" / "salesforce_users.json"
    dest = open_target(f"sandbox:salesforce?users={users}&db={base / 'org.sqlite'}"
                       "&bulk_threshold=5", schema_changes=list(compiled.PLAN.schema_changes),
                       state_dir=base)
    closes = [0]
    if kill_at is not None:
        route = dest.sandbox.bulk.route

        def dies(method, rest, body):
            out = route(method, rest, body)
            if method == "PATCH" and b"UploadComplete" in body:
                closes[0] += 1
                if closes[0] == kill_at:
                    raise Killed(f"killed after closing job {rest[0]}")
            return out

        dest.sandbox.bulk.route = dies
    source = open_source(str(sample))
    try:
        with StateStore(base / "state.sqlite") as state:
            result = run_migration(compiled, source, dest, state, base / "stage",
                                   source_id=str(sample), options=RunOptions(
                                       load=LoadOptions(files_root=sample, sleep=lambda s: None,
                                                        seed=7), resume=resume))
            _run_in_background(dest.sandbox)  # the dead processes' jobs, too: no harm done
            return result, _org(dest, compiled), dest.sandbox.calls["POST /jobs/ingest"]
    except Killed:
        with StateStore(base / "state.sqlite") as state:
            return state.latest_run().id, None, None
    finally:
        source.close()
        dest.close()


def _org(dest, compiled) -> dict:
    """Every record by external id, links as the linked record's ``<Object>:<external id>``;
    asserts no object holds an external id twice."""
    records = {o: list(dest.list_records(o)) for o in sorted({st.target
                                                              for st in compiled.PLAN.steps})}
    ext_of = {r["id"]: f"{o}:{r['$external_id']}" for o, rs in records.items() for r in rs}
    out = {}
    for o, recs in records.items():
        exts = [r["$external_id"] for r in recs]
        assert len(exts) == len(set(exts)), f"duplicate records in {o}"
        out[o] = {r["$external_id"]: {k: ext_of.get(v, v) if isinstance(v, str) else v
                                      for k, v in r.items() if k not in (
                                          "id", "CreatedDate", "LastModifiedDate",
                                          "SystemModstamp")} for r in recs}
    return out


def test_a_bulk_run_killed_after_closing_jobs_resumes_to_the_same_org(tmp_path):
    from tests.compiled import compile_and_load

    root = Path(__file__).resolve().parents[2]
    mapping = root / "mappings" / "aeronaclinic_to_salesforce.fmap"
    sample = root / "mappings" / "samples" / "aeronaclinic_api"
    (tmp_path / "build").mkdir()
    compiled = compile_and_load(mapping, tmp_path / "build",
                                display="mappings/aeronaclinic_to_salesforce.fmap")
    (tmp_path / "ref").mkdir()
    ref, expected, jobs = _migrate(compiled, tmp_path / "ref", sample, None, None)
    assert ref.status == "completed" and jobs >= 3  # the run really goes through Bulk jobs
    base = tmp_path / "killed"
    base.mkdir()
    run_id, _, _ = _migrate(compiled, base, sample, None, kill_at=1)
    assert isinstance(run_id, int)  # killed, not finished
    again, _, _ = _migrate(compiled, base, sample, run_id, kill_at=2)
    assert again == run_id
    result, got, _ = _migrate(compiled, base, sample, run_id, None)
    assert result.status == "completed", result.message
    assert got == expected  # 0 duplicates (asserted per object), 0 missing, same values
    assert result.counts == ref.counts
