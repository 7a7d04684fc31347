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
