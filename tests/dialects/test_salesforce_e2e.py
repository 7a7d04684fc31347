"""End to end: mappings/aeronaclinic_to_salesforce.fmap on the committed sample
(mappings/samples/aeronaclinic_api) through ``run_migration`` into ``sandbox:salesforce`` (the REST
API emulator over the generic store), fault-free and with injected faults (403 concurrency
throttles, 503s, timeouts, lost responses, locked rows): the same org, 0 duplicates, 0 lost.

Then over loopback: ``fmap sandbox serve --dialect salesforce`` in a subprocess, the custom
objects written by ``fmap schema apply --emit package`` and deployed to it, and the same run
through ``salesforce://127.0.0.1:PORT``: the same counts and the same org as in process; and with
faults injected in the served sandbox (lost responses, 403 throttles, 503s)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from runtime.destinations.faults import FaultPlan
from runtime.executor import LoadOptions, RunOptions, run_migration
from runtime.sources import open_source
from runtime.state import StateStore
from runtime.targets import open_target
from tests.compiled import compile_and_load

ROOT = Path(__file__).resolve().parents[2]
MAPPING = ROOT / "mappings" / "aeronaclinic_to_salesforce.fmap"
SAMPLE = ROOT / "mappings" / "samples" / "aeronaclinic_api"
USERS = ROOT / "mappings" / "sandbox" / "salesforce_users.json"


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    return compile_and_load(MAPPING, tmp_path_factory.mktemp("build"),
                            display="mappings/aeronaclinic_to_salesforce.fmap")


def _run(module, base: Path, faults: FaultPlan | None, dest=None):
    src = base / "src"
    shutil.copytree(SAMPLE, src)
    if dest is None:
        dest = open_target(f"sandbox:salesforce?users={USERS}&db={base / 'org.sqlite'}",
                           schema_changes=list(module.PLAN.schema_changes), state_dir=base)
    if faults is not None:
        dest.sandbox.store.faults = faults
    source = open_source(str(src))
    try:
        with StateStore(base / "state.sqlite") as state:
            result = run_migration(module, source, dest, state, base / "stage",
                                   source_id=str(src),
                                   options=RunOptions(load=LoadOptions(
                                       files_root=src, sleep=lambda s: None, seed=7,
                                       max_retries=15)))
    finally:
        source.close()
    return dest, result


def _org(dest, objects) -> dict:
    """Every record by external id (lookups as <Object>:<external id>), and the files."""
    records = {o: list(dest.list_records(o)) for o in objects}
    ext_of = {r["id"]: f"{o}:{r['$external_id']}" for o, rs in records.items() for r in rs}
    out: dict = {}
    for o, rs in records.items():
        exts = [r["$external_id"] for r in rs]
        assert len(exts) == len(set(exts)), f"duplicate records in {o}"
        out[o] = {r["$external_id"]: {k: ext_of.get(v, v) for k, v in r.items()
                                      if k not in ("id", "CreatedDate", "LastModifiedDate",
                                                   "SystemModstamp")}
                  for r in rs}
    out["files"] = sorted((f["Title"], f["ContentSize"]) for rs in records.values() for r in rs
                          if r["id"].startswith(dest.sandbox._prefix["Document__c"])
                          for f in dest.list_files(r["id"]))
    return out


def test_faults_give_the_same_org_as_a_clean_run(compiled, tmp_path):
    objects = sorted({st.target for st in compiled.PLAN.steps})
    (tmp_path / "clean").mkdir()
    (tmp_path / "faulty").mkdir()
    clean, r1 = _run(compiled, tmp_path / "clean", None)
    faults = FaultPlan(3, record_error_rate=0.03, batch_failure_rate=0.08, timeout_rate=0.06,
                       lost_response_rate=0.12, throttle_rate=0.1)
    faulty, r2 = _run(compiled, tmp_path / "faulty", faults)
    try:
        assert r1.status == "completed", r1.message
        assert r2.status == "completed", r2.message
        assert {k: c["failed"] for k, c in r1.counts.items()} == \
            {k: c["failed"] for k, c in r2.counts.items()}
        kinds = {k for _, _, k, _ in faults.outcomes()}
        assert {"lost_response", "throttle", "timeout"} <= kinds
        assert faulty.sandbox.limited > 0  # 403 REQUEST_LIMIT_EXCEEDED (concurrency) answered
        faulty.sandbox.store.faults = None
        a, b = _org(clean, objects), _org(faulty, objects)
        assert a == b  # 0 duplicates, 0 lost, same values and links
        assert a["Contact"] and a["Appointment__c"]
        some = next(iter(a["Contact"].values()))
        assert some["AccountId"].startswith("Account:")
        assert all(c["Contact__c"].startswith("Contact:") for c in a["Appointment__c"].values())
        ids = [r["id"] for r in clean.list_records("Contact")]
        assert all(len(i) == 18 and i.startswith("003") for i in ids)
    finally:
        clean.close()
        faulty.close()


# ---------------------------------------------------------------------- loopback
def _normalised(dest, objects) -> dict:
    """The org as the REST API shows it (works for a loopback client and an in-process one):
    records by external id with lookups as <Object>:<external id>, and every file."""
    records = {o: list(dest.list_records(o)) for o in objects}
    ext_of = {r["id"]: f"{o}:{r['$external_id']}" for o, rs in records.items() for r in rs}
    out: dict = {}
    for o, rs in records.items():
        exts = [r["$external_id"] for r in rs]
        assert len(exts) == len(set(exts)), f"duplicate records in {o}"
        out[o] = {r["$external_id"]: {k: ext_of.get(v, v) for k, v in r.items()
                                      if k not in ("id", "CreatedDate", "LastModifiedDate",
                                                   "SystemModstamp", "IsDeleted")}
                  for r in rs}
    out["files"] = sorted((ext_of[r["id"]], f["Title"], f["ContentSize"])
                          for r in records.get("Document__c", []) for f in dest.list_files(r["id"]))
    return out


@pytest.fixture(scope="module")
def in_process(compiled, tmp_path_factory):
    """The fault-free in-process run the loopback runs are compared with."""
    base = tmp_path_factory.mktemp("sf_local")
    dest, result = _run(compiled, base, None)
    try:
        assert result.status == "completed", result.message
        objects = sorted({st.target for st in compiled.PLAN.steps})
        yield result, _normalised(dest, objects), objects
    finally:
        dest.close()


def _loopback(compiled, tmp_path, monkeypatch, port: int):
    """Point the client at the served sandbox, write the package with the CLI, deploy it."""
    from typer.testing import CliRunner

    from fmap.cli import app

    monkeypatch.setenv("SF_ACCESS_TOKEN", "e2e-loopback-token")
    for var in ("SF_INSTANCE_URL", "SF_CLIENT_ID", "SF_CLIENT_SECRET", "SF_REFRESH_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    target = f"salesforce://127.0.0.1:{port}"
    res = CliRunner().invoke(app, ["schema", "apply", str(MAPPING), "--target", target,
                                   "--emit", "package", str(tmp_path / "pkg")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "pkg" / "objects" / "Appointment__c.object").exists()
    dest = open_target(target)
    deployed = dest.deploy_package(tmp_path / "pkg")  # what the admin does
    assert deployed["deployResult"]["success"] is True
    return dest


def test_loopback_matches_in_process(compiled, in_process, tmp_path, monkeypatch):
    from tests.dialects.served import serve

    local_result, local_org, objects = in_process
    with serve(tmp_path, "salesforce", ["--users", str(USERS)]) as port:
        dest = _loopback(compiled, tmp_path, monkeypatch, port)
        try:
            (tmp_path / "run").mkdir()
            _, result = _run(compiled, tmp_path / "run", None, dest=dest)
            assert result.status == "completed", result.message
            remote_org = _normalised(dest, objects)
        finally:
            dest.close()
    assert result.counts == local_result.counts
    assert remote_org == local_org
    assert remote_org["files"] and remote_org["Appointment__c"]


def test_loopback_faults(compiled, in_process, tmp_path, monkeypatch):
    from tests.dialects.served import serve

    _, local_org, objects = in_process
    faults = "seed=11,lost_response_rate=0.1,throttle_rate=0.06,batch_failure_rate=0.06"
    with serve(tmp_path, "salesforce", ["--users", str(USERS), "--faults", faults]) as port:
        dest = _loopback(compiled, tmp_path, monkeypatch, port)
        try:
            (tmp_path / "run").mkdir()
            _, result = _run(compiled, tmp_path / "run", None, dest=dest)
            assert result.status == "completed", result.message
            assert dest.stats.throttled > 0  # 403 REQUEST_LIMIT_EXCEEDED (concurrency) seen
            remote_org = _normalised(dest, objects)  # asserts 0 duplicates per object
        finally:
            dest.close()
    assert remote_org == local_org  # 0 missing, 0 extra, same values and links
