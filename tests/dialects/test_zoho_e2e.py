"""End to end: a multi-object mapping (Accounts, Leads, Contacts, a custom module, Events, Notes,
attachments) through ``run_migration`` into the Zoho sandbox, in process (``sandbox:zoho``) and over
loopback (``fmap sandbox serve`` in a subprocess, custom schema created by ``fmap schema apply``),
with the same outcome; then 429s and injected faults (lost responses included) with no duplicate
and no lost record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtime.destinations.faults import FaultPlan
from runtime.dialects import get_dialect
from runtime.dialects.zoho import open_sandbox
from runtime.executor import LoadOptions, RunOptions, run_migration
from runtime.schema.changes import apply_changes
from runtime.sources import open_source
from runtime.state import StateStore
from runtime.targets import open_target, sandbox_users
from tests.compiled import compile_and_load
from tests.dialects.served import serve

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "zoho"
MODULES = ("Accounts", "Leads", "Contacts", "Patient_Details", "Events", "Notes")
DOCTORS = ("dr.jones@example.com", "dr.patel@example.com", "locum@example.com")


def make_source(root: Path, n_patients: int = 24) -> Path:
    """clinics.json, patients.json (nested appointments + notes), documents.json, files/."""
    src = root / "src"
    (src / "files").mkdir(parents=True, exist_ok=True)
    clinics = [{"id": f"C{i}", "name": f"Harbour Clinic {i}", "phone": f"+44 20 7946 00{i:02d}"}
               for i in range(1, 4)]
    patients, documents = [], []
    for i in range(1, n_patients + 1):
        status = "Prospect" if i % 5 == 0 else "Active"
        patients.append({
            "id": f"P{i}", "first_name": f"Pat{i}", "last_name": f"Smith{i}",
            "email": f"pat{i}@example.org", "status": status,
            "clinic_id": clinics[i % 3]["id"], "practitioner_email": DOCTORS[i % 3],
            "nhs_number": f"{9000000000 + i}",
            "appointments": [] if status == "Prospect" else [
                {"id": f"A{i}-{k}", "title": f"Check-up {k}",
                 "start": f"2024-03-{(i % 27) + 1:02d}T09:{k * 15:02d}:00+00:00",
                 "end": f"2024-03-{(i % 27) + 1:02d}T09:{k * 15 + 10:02d}:00+00:00"}
                for k in range(i % 3)],
            "notes": [] if status == "Prospect" else [
                {"id": f"N{i}-{k}", "body": f"Note {k} about patient {i}"} for k in range(i % 2 + 1)],
        })
        if status != "Prospect" and i % 4 == 1:
            name = f"consent-{i}.txt"
            (src / "files" / name).write_text(f"consent form of patient {i}\n" * (i + 1))
            documents.append({"id": f"D{i}", "patient_id": f"P{i}", "path": f"files/{name}",
                              "file_name": name})
    for name, rows in (("clinics", clinics), ("patients", patients), ("documents", documents)):
        (src / f"{name}.json").write_text(json.dumps(rows), "utf-8")
    return src


def expected_counts(n_patients: int = 24) -> dict[str, int]:
    prospects = [i for i in range(1, n_patients + 1) if i % 5 == 0]
    active = [i for i in range(1, n_patients + 1) if i % 5 != 0]
    return {"Accounts": 3, "Leads": len(prospects), "Contacts": len(active),
            "Patient_Details": len(active), "Events": sum(i % 3 for i in active),
            "Notes": sum(i % 2 + 1 for i in active)}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    return compile_and_load(FIXTURES / "e2e.fmap", tmp_path_factory.mktemp("build"))


def _run(module, dest, src: Path, state_dir: Path, *, opts: LoadOptions | None = None):
    source = open_source(str(src))
    try:
        load = opts or LoadOptions()
        load.files_root = src
        load.sleep = load.sleep or (lambda s: None)
        load.seed = 7
        with StateStore(state_dir / "state.sqlite") as state:
            return run_migration(module, source, dest, state, state_dir / "stage",
                                 source_id=str(src), options=RunOptions(load=load))
    finally:
        source.close()


def normalised(client) -> dict:
    """Every record of every module keyed by external id, ids replaced by external ids; plus each
    record's attachments (name, size)."""
    records = {m: list(client.list_records(m)) for m in MODULES}
    ext_of = {r["id"]: f"{m}:{r['$external_id']}" for m, rs in records.items() for r in rs}
    out: dict = {}
    for m, rs in records.items():
        objs = {}
        for r in rs:
            fields = {k: ext_of.get(v, v) if isinstance(v, str) else v for k, v in r.items()
                      if k not in ("id", "Created_Time", "Modified_Time", "$external_id")}
            objs[r["$external_id"]] = fields
        out[m] = objs
    out["attachments"] = {
        r["$external_id"]: sorted((a["File_Name"], str(a["Size"]))
                                  for a in client.list_attachments("Contacts", r["id"]))
        for r in records["Contacts"]}
    return out


def _check_complete(snap: dict, n_patients: int = 24) -> None:
    exp = expected_counts(n_patients)
    for m, n in exp.items():
        assert len(snap[m]) == n, (m, len(snap[m]), n)
    # lookups and owners are linked
    for c in snap["Contacts"].values():
        assert c["Account_Name"].startswith("Accounts:"), c
        assert c["Owner"].isdigit()
    assert all(e["Who_Id"].startswith("Contacts:") for e in snap["Events"].values())
    assert all(n["Parent_Id"].startswith("Contacts:") for n in snap["Notes"].values())
    assert all(p["Contact"].startswith("Contacts:") for p in snap["Patient_Details"].values())
    n_docs = sum(1 for i in range(1, n_patients + 1) if i % 5 and i % 4 == 1)
    assert sum(len(v) for v in snap["attachments"].values()) == n_docs
    assert all(len(v) <= 1 for v in snap["attachments"].values())  # no duplicate upload


def _in_process(compiled, tmp: Path, src: Path, options: dict | None = None):
    schema = apply_changes(get_dialect("zoho").standard_schema(),
                           list(compiled.PLAN.schema_changes))
    return open_sandbox(schema, tmp / "org.sqlite", sandbox_users(FIXTURES / "users.json"),
                        options or {})


def test_in_process_run_links_everything(compiled, tmp_path):
    src = make_source(tmp_path)
    dest = _in_process(compiled, tmp_path, src)
    try:
        result = _run(compiled, dest, src, tmp_path)
        assert result.status == "completed", result.message
        assert result.ok, result.counts
        snap = normalised(dest)
        _check_complete(snap)
        owners = {c["Owner"] for c in snap["Contacts"].values()}
        assert owners == {"5725767000000411002", "5725767000000411003", "5725767000000411001"}
        # the sandbox_store view agrees with the API view, and ids look like Zoho's
        ids = [r["id"] for r in dest.list_records("Contacts")]
        assert all(len(i) == 19 and i.isdigit() for i in ids)
        # a second run changes nothing and sends no writes
        again = _run(compiled, dest, src, tmp_path)
        assert again.ok and again.stats.written == 0
        assert normalised(dest) == snap
    finally:
        dest.close()


def test_sandbox_target_uri_uses_zoho_api(compiled, tmp_path):
    dest = open_target(f"sandbox:zoho?db={tmp_path / 'x.sqlite'}",
                       schema_changes=list(compiled.PLAN.schema_changes))
    try:
        assert type(dest).__name__ == "ZohoClient"
        assert dest.capabilities.rate_limit.kind == "credits"
        assert dest.schema().object("Patient_Details") is not None
    finally:
        dest.close()


def test_faults_and_429s_are_survived(compiled, tmp_path):
    """Throttles, 503s, timeouts, lost responses and locked records, plus the credit window
    itself (a tiny tier on a fake clock): no duplicate, nothing lost."""
    src = make_source(tmp_path, 40)

    class FakeClock:
        t = 1000.0

        def __call__(self) -> float:
            return self.t

        def sleep(self, s: float) -> None:
            # at least 1 ms: the executor's TokenBucket re-checks after sleeping the computed
            # wait, and a wait below the float resolution of t would never advance a fake clock
            self.t += max(s, 0.001)

    clock = FakeClock()
    faults = FaultPlan(11, record_error_rate=0.03, batch_failure_rate=0.06, timeout_rate=0.06,
                       lost_response_rate=0.08, throttle_rate=0.06)
    dest = _in_process(compiled, tmp_path, src, {
        "faults": faults, "credits": "12", "window": "60", "clock": clock})
    try:
        result = _run(compiled, dest, src, tmp_path,
                      opts=LoadOptions(clock=clock, sleep=clock.sleep, max_retries=12))
        assert result.status == "completed", result.message
        assert result.ok, result.counts
        kinds = {k for _, _, k, _ in faults.outcomes()}
        assert {"lost_response", "throttle"} <= kinds
        # the credit window bit: the client held calls back for credits (paced), or the sandbox
        # answered 429s of its own, not only injected ones
        print("paced", dest.paced, "throttled", dest.sandbox.throttled)
        assert dest.paced + dest.sandbox.throttled > 0
        dest.sandbox.ledger.limit = 1e9  # read everything back without waiting for the window
        dest.credits.observe(None)  # ...and the client forgets its (now wrong) estimate
        snap = normalised(dest)
        _check_complete(snap, 40)
        for m in MODULES:  # 0 duplicates: one record per external id
            exts = [r["$external_id"] for r in dest.list_records(m)]
            assert len(exts) == len(set(exts)), m
    finally:
        dest.close()


@pytest.mark.parametrize("retry_after", ["1", "0"], ids=["429-with-retry_after", "429-bare"])
def test_run_paces_from_the_credits_the_org_has_left(compiled, tmp_path, retry_after):
    """Another integration already spent 297 of the org's 300 credits, spread over the rolling
    window. The executor's bucket starts full regardless; the client paces from the credits Zoho
    reports left (X-API-CREDITS-REMAINING), so the run completes without a single 429, whether or
    not Zoho's 429s would say when to retry. (Before: 429s until a call ran out of retries.)"""
    src = make_source(tmp_path, 80)

    class FakeClock:
        t = 0.0

        def __call__(self) -> float:
            return self.t

        def sleep(self, s: float) -> None:
            self.t += max(s, 0.001)

    clock = FakeClock()
    dest = _in_process(compiled, tmp_path, src, {"credits": "300", "window": "3000",
                                                 "clock": clock, "retry_after": retry_after})
    try:
        for k in range(297):
            clock.t = k * 3000 / 297
            assert dest.sandbox.ledger.charge(1) is None
        clock.t = 3000.0 - 0.001
        result = _run(compiled, dest, src, tmp_path,
                      opts=LoadOptions(clock=clock, sleep=clock.sleep))
        assert result.status == "completed", result.message
        assert result.ok, result.counts
        assert dest.sandbox.throttled == 0
        assert dest.paced > 0
        assert dest.sandbox.ledger.used <= 300
        dest.sandbox.ledger.limit = 1e9
        dest.credits.observe(None)
        _check_complete(normalised(dest), 80)
    finally:
        dest.close()


# ---------------------------------------------------------------------- loopback
TOKEN = "e2e-loopback-token"


@pytest.fixture
def served(tmp_path):
    with serve(tmp_path, "zoho", ["--users", str(FIXTURES / "users.json")], TOKEN) as port:
        yield port, TOKEN


def _schema_apply(port: int, monkeypatch, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from fmap.cli import app

    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    dry = runner.invoke(app, ["schema", "apply", str(FIXTURES / "e2e.fmap"), "--target",
                              f"zoho://127.0.0.1:{port}"])
    assert dry.exit_code == 0, dry.output
    assert "+ module Patient_Details" in dry.output and "dry run" in dry.output
    done = runner.invoke(app, ["schema", "apply", str(FIXTURES / "e2e.fmap"), "--target",
                               f"zoho://127.0.0.1:{port}", "--apply"])
    assert done.exit_code == 0, done.output
    again = runner.invoke(app, ["schema", "apply", str(FIXTURES / "e2e.fmap"), "--target",
                                f"zoho://127.0.0.1:{port}"])
    assert "already has every module" in again.output


def test_loopback_matches_in_process(compiled, tmp_path, served, monkeypatch):
    port, token = served
    monkeypatch.setenv("ZOHO_ACCESS_TOKEN", token)
    for var in ("ZOHO_CLIENT_ID", "ZOHO_CLIENT_SECRET", "ZOHO_REFRESH_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    _schema_apply(port, monkeypatch, tmp_path)
    src = make_source(tmp_path / "a")
    remote = open_target(f"zoho://127.0.0.1:{port}")
    (tmp_path / "remote").mkdir()
    try:
        r1 = _run(compiled, remote, src, tmp_path / "remote")
        assert r1.ok, (r1.message, r1.counts)
        snap_remote = normalised(remote)
    finally:
        remote.close()
    local_dir = tmp_path / "local"
    local_dir.mkdir()
    local = _in_process(compiled, local_dir, src)
    try:
        r2 = _run(compiled, local, src, local_dir)
        assert r2.ok
        snap_local = normalised(local)
    finally:
        local.close()
    assert r1.counts == r2.counts
    assert snap_remote == snap_local
    _check_complete(snap_remote)


@pytest.mark.parametrize("faults", ["seed=5,lost_response_rate=0.1,throttle_rate=0.05,"
                                    "batch_failure_rate=0.05"], ids=["lost+429+503"])
def test_loopback_faults(compiled, tmp_path, monkeypatch, faults):
    with serve(tmp_path, "zoho", ["--users", str(FIXTURES / "users.json"), "--faults", faults],
               TOKEN) as port:
        monkeypatch.setenv("ZOHO_ACCESS_TOKEN", TOKEN)
        _schema_apply(port, monkeypatch, tmp_path)
        src = make_source(tmp_path / "a")
        remote = open_target(f"zoho://127.0.0.1:{port}")
        try:
            r = _run(compiled, remote, src, tmp_path, opts=LoadOptions(max_retries=12))
            assert r.ok, (r.message, r.counts)
            snap = normalised(remote)
            _check_complete(snap)
            for m in MODULES:
                exts = [x["$external_id"] for x in remote.list_records(m)]
                assert len(exts) == len(set(exts)), m
        finally:
            remote.close()


def test_rollback_and_reconcile_read_the_zoho_api(compiled, tmp_path):
    """`fmap rollback` compares what fmap wrote with what the API returns: no false conflicts,
    files removed through their parent; reconciliation finds every uploaded file."""
    from runtime.operations.reconcile import reconcile_run
    from runtime.operations.rollback import rollback_run

    src = make_source(tmp_path)
    dest = _in_process(compiled, tmp_path, src)
    try:
        result = _run(compiled, dest, src, tmp_path)
        assert result.ok
        with StateStore(tmp_path / "state.sqlite") as state:
            rec = reconcile_run(state, dest, result.run_id, plan=compiled.PLAN, sample_share=1.0)
            by_obj = {o.target_object: o for o in rec.objects}
            for m in MODULES:
                assert by_obj[m].flags == [], (m, by_obj[m].flags)
            assert by_obj["Attachments"].sample_mismatches == 0
            rb = rollback_run(state, dest, result.run_id)
            assert rb.conflicts == [] and not rb.failed, (rb.conflicts[:2], rb.failed[:2])
        for m in MODULES:
            assert dest.count(m) == 0, m
        store = dest.sandbox.store
        assert all(store.attachments("Contacts", r["id"]) == []
                   for r in store.recycle_bin("Contacts"))
    finally:
        dest.close()
