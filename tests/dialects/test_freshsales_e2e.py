"""End to end: ``mappings/aeronaclinic_to_freshsales.fmap`` on the committed sample
``mappings/samples/aeronaclinic_api`` through ``run_migration`` into ``sandbox:freshsales`` (the
Freshsales HTTP API in process: bulk upsert jobs, emulated upserts, documents), once fault-free
and once with throttles, 503s, timeouts, lost responses and record errors injected: the org ends
up the same, with no duplicate and no lost record or file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtime.executor import (
    ATTACHMENT_OBJECTS,
    LoadOptions,
    RunOptions,
    run_migration,
)
from runtime.sources import open_source
from runtime.state import StateStore
from runtime.targets import open_target
from tests.compiled import compile_and_load

ROOT = Path(__file__).resolve().parents[2]
FMAP = ROOT / "mappings" / "aeronaclinic_to_freshsales.fmap"
SAMPLE = ROOT / "mappings" / "samples" / "aeronaclinic_api"
USERS = ROOT / "mappings" / "sandbox" / "freshsales_users.json"
# single-record entities make one call a record: the rates are per call
FAULTS = ("seed=7,throttle_rate=0.04,lost_response_rate=0.04,batch_failure_rate=0.02,"
          "timeout_rate=0.02,record_error_rate=0.02")


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    return compile_and_load(FMAP, tmp_path_factory.mktemp("build"))


def _open(compiled, base: Path, extra: str = ""):
    return open_target(f"sandbox:freshsales?users={USERS}&db={base / 'org.sqlite'}{extra}",
                       schema_changes=list(compiled.PLAN.schema_changes), state_dir=base)


def _run(compiled, dest, base: Path, **load_options):
    source = open_source(str(SAMPLE))
    try:
        load = LoadOptions(**{"files_root": SAMPLE, "sleep": lambda s: None, "max_retries": 40,
                              **load_options})
        with StateStore(base / "state.sqlite") as state:
            return run_migration(compiled, source, dest, state, base / "stage",
                                 source_id=str(SAMPLE), options=RunOptions(load=load))
    finally:
        source.close()


def objects(compiled) -> list[str]:
    return sorted({st.target for st in compiled.PLAN.steps} - ATTACHMENT_OBJECTS)


def normalised(compiled, dest) -> dict:
    """Every record keyed by external id, with ids (lookups, targetable ids) replaced by the
    referenced record's external id; documents as (parent, name, size)."""
    records = {o: list(dest.list_records(o)) for o in objects(compiled)}
    ext_of = {r["id"]: f"{o}:{r['$external_id']}" for o, rs in records.items() for r in rs}
    out: dict = {}
    for o, rs in records.items():
        exts = [r["$external_id"] for r in rs]
        assert None not in exts, o
        assert len(exts) == len(set(exts)), f"duplicate {o} records"
        out[o] = {r["$external_id"]: {k: ext_of.get(v, v) if isinstance(v, str) else v
                                      for k, v in r.items() if not k.startswith("$")
                                      and k != "id"} for r in rs}
    docs = [(ext_of[r["id"]], d["name"], d["content_file_size"]) for r in records["Contact"]
            for d in dest.list_attachments("Contact", r["id"])]
    assert len(docs) == dest.count("Document")
    assert len(docs) == len(set(docs)), "a file uploaded twice"
    out["Document"] = sorted(docs)
    return out


@pytest.fixture(scope="module")
def clean(compiled, tmp_path_factory):
    base = tmp_path_factory.mktemp("clean")
    dest = _open(compiled, base)
    try:
        result = _run(compiled, dest, base)
        yield result, normalised(compiled, dest), dest, base
    finally:
        dest.close()


def test_fault_free_run_loads_every_map(compiled, clean):
    result, snap, dest, base = clean
    assert type(dest).__name__ == "FreshsalesClient"
    assert result.status == "completed", result.message
    assert result.ok, result.counts
    for name, c in result.counts.items():
        assert c["failed"] == 0 and c["pending"] == 0, (name, c)
    created = {}
    for st in compiled.PLAN.steps:
        created[st.target] = created.get(st.target, 0) + result.counts[st.name]["created"]
    for o in objects(compiled):
        assert len(snap[o]) == created[o] == dest.count(o), o
    assert len(snap["Document"]) == created["Document"] > 0
    # lookups, owners and targetables are linked; dropdowns were stored as their labels
    contacts = snap["Contact"]
    assert all(c["sales_account_id"].startswith("SalesAccount:") for c in contacts.values())
    users = {u.id for u in dest.list_users() if u.active}
    assert all(c["owner_id"] in users for c in contacts.values())
    assert {c.get("cf_gender") for c in contacts.values()} <= {"Male", "Female", "Other",
                                                                "Unknown", None}
    assert all(a["targetable_id"].startswith("Contact:") for a in snap["Appointment"].values())
    assert all(n["targetable_id"].startswith("Contact:") for n in snap["Note"].values())
    assert all(d["cf_deal"].startswith("Deal:") for d in snap["deal_products"].values())
    assert all(p.startswith("Contact:") for p, _, _ in snap["Document"])
    # bulk upserts went through the asynchronous job API
    assert dest.sandbox.jobs and all(j["status"] == "completed"
                                     for j in dest.sandbox.jobs.values())
    # a second run sends no writes and changes nothing
    again = _run(compiled, dest, base)
    assert again.ok and again.stats.written == 0
    assert normalised(compiled, dest) == snap


def test_faults_give_no_duplicate_and_no_lost_record(compiled, clean, tmp_path):
    _, expected, _, _ = clean
    dest = _open(compiled, tmp_path, f"&faults={FAULTS}")
    try:
        result = _run(compiled, dest, tmp_path)
        assert result.status == "completed", result.message
        assert result.ok, result.counts
        kinds = {k for _, _, k, _ in dest.sandbox.faults.outcomes()}
        assert {"throttle", "lost_response", "timeout", "batch_failure"} <= kinds
        assert dest.sandbox.throttled > 0 and dest.stats.throttled > 0
        dest.sandbox.faults = dest.sandbox.store.faults = None  # read back undisturbed
        assert normalised(compiled, dest) == expected
    finally:
        dest.close()


def test_hourly_limit_429s_are_waited_out(compiled, clean, tmp_path):
    """A tiny hourly limit on a fake clock: the sandbox answers 429 with Retry-After until the
    next hour, the executor waits (fake sleep) and everything loads once."""
    _, expected, _, _ = clean

    class FakeClock:
        t = 1000.0

        def __call__(self) -> float:
            return self.t

        def sleep(self, s: float) -> None:
            self.t += max(s, 0.001)

    clock = FakeClock()
    dest = _open(compiled, tmp_path, "&limit=200")
    dest.sandbox.ledger.clock = clock
    try:
        result = _run(compiled, dest, tmp_path, clock=clock, sleep=clock.sleep)
        assert result.status == "completed", result.message
        assert result.ok, result.counts
        assert dest.sandbox.throttled > 0 and clock.t > 3600
        dest.sandbox.ledger.limit = float("inf")
        assert normalised(compiled, dest) == expected
    finally:
        dest.close()


# ---------------------------------------------------------------------- loopback
# What the documented create-field call cannot make (choices, uniqueness, lookup targets) an
# admin makes in the UI; the served org starts with those, as the admin left it.
_ADMIN_ONLY = {"unique", "external_id", "values", "lookup"}


def _admin_changes(compiled) -> tuple[list[dict], list[dict]]:
    changes = [dict(c) for c in compiled.PLAN.schema_changes]
    admin = [c for c in changes if c["action"] == "create_field"
             and set(c.get("details") or {}) & _ADMIN_ONLY]
    modules = {c["object"] for c in admin}
    admin += [c for c in changes if c["action"] == "create_module" and c["object"] in modules]
    return admin, [c for c in changes if c not in admin]


def _served_org(compiled, tmp_path: Path, monkeypatch, extra: list[str] = ()):
    """An org customised by hand (admin-only changes) served by `fmap sandbox serve`, with the
    rest created over loopback by `fmap schema apply`; yields the port."""
    from typer.testing import CliRunner

    from fmap.cli import app
    from runtime.dialects import get_dialect
    from runtime.dialects.freshsales.sandbox import SANDBOX_FIELD_TYPE_CODES, FreshsalesSandbox
    from runtime.schema.changes import apply_changes
    from tests.dialects.served import serve

    dialect = get_dialect("freshsales")
    admin, api = _admin_changes(compiled)
    db = tmp_path / "served.sqlite"
    FreshsalesSandbox(apply_changes(dialect.standard_schema(), admin, dialect), db).close()
    monkeypatch.setenv("FRESHSALES_API_KEY", "e2e-loopback-token")
    monkeypatch.setenv("FRESHSALES_FIELD_TYPE_CODES",
                       ",".join(f"{k}={v}" for k, v in SANDBOX_FIELD_TYPE_CODES.items()))
    monkeypatch.chdir(tmp_path)
    # jobs done at the first poll: the real client waits a second between polls (in process,
    # the polling itself is exercised)
    args = ["--db", str(db), "--users", str(USERS), "--option", "job_polls=0", *extra]
    with serve(tmp_path, "freshsales", args) as port:
        runner = CliRunner()
        target = f"freshsales://127.0.0.1:{port}"
        dry = runner.invoke(app, ["schema", "apply", str(FMAP), "--target", target])
        assert dry.exit_code == 0, dry.output
        assert f"{len(api)} change(s); dry run" in dry.output
        done = runner.invoke(app, ["schema", "apply", str(FMAP), "--target", target, "--apply"])
        assert done.exit_code == 0, done.output
        again = runner.invoke(app, ["schema", "apply", str(FMAP), "--target", target])
        assert "already has every module" in again.output, again.output
        pulled = runner.invoke(app, ["schema", "pull", target, "-m", "Deal", "-m",
                                     "treatment_plans", "-o", str(tmp_path / "snap.json")])
        assert pulled.exit_code == 0, pulled.output
        snap = dialect.load_metadata(json.loads((tmp_path / "snap.json").read_text("utf-8")),
                                     source_name="snap.json")
        made = [c["field"] for c in api if c["object"] == "Deal"]
        assert made and all(snap.object("Deal").field(f).custom for f in made)
        assert snap.object("treatment_plans").field("cf_contact").type.value == "lookup"
        yield port


def test_schema_apply_over_loopback_names_the_admin_steps(compiled, tmp_path, monkeypatch):
    """On an untouched org, the mapping's unique, lookup and dropdown fields cannot be made
    through the API: the CLI exits 2 with the admin steps and creates nothing."""
    from typer.testing import CliRunner

    from fmap.cli import app
    from tests.dialects.served import serve

    monkeypatch.setenv("FRESHSALES_API_KEY", "e2e-loopback-token")
    from runtime.dialects.freshsales.sandbox import SANDBOX_FIELD_TYPE_CODES

    monkeypatch.setenv("FRESHSALES_FIELD_TYPE_CODES",
                       ",".join(f"{k}={v}" for k, v in SANDBOX_FIELD_TYPE_CODES.items()))
    monkeypatch.chdir(tmp_path)
    with serve(tmp_path, "freshsales") as port:
        target = f"freshsales://127.0.0.1:{port}"
        r = CliRunner().invoke(app, ["schema", "apply", str(FMAP), "--target", target,
                                     "--apply"])
        assert r.exit_code == 2, r.output
        assert "Admin Settings > Module customization" in r.output
        admin, _ = _admin_changes(compiled)
        steps = [line for line in r.output.splitlines() if "Admin Settings >" in line]
        assert len(steps) == sum(c["action"] == "create_field" for c in admin)
        assert "property Unique" in r.output and "lookup to Contact" in r.output
        assert "choices Draft, Issued, Part Paid, Paid, Written Off" in r.output
        again = CliRunner().invoke(app, ["schema", "apply", str(FMAP), "--target", target])
        assert "+ module treatment_plans" in again.output  # nothing was created


def test_loopback_matches_in_process(compiled, clean, tmp_path, monkeypatch):
    result, expected, _, _ = clean
    for port in _served_org(compiled, tmp_path, monkeypatch):
        remote = open_target(f"freshsales://127.0.0.1:{port}", state_dir=tmp_path)
        try:
            assert remote.base_url == f"http://127.0.0.1:{port}"
            r = _run(compiled, remote, tmp_path)
            assert r.status == "completed", r.message
            assert r.ok, r.counts
            assert r.counts == result.counts
            assert normalised(compiled, remote) == expected
        finally:
            remote.close()


def test_loopback_faults_give_no_duplicate_and_no_lost_record(compiled, clean, tmp_path,
                                                              monkeypatch):
    _, expected, _, _ = clean
    for port in _served_org(compiled, tmp_path, monkeypatch, ["--faults", FAULTS]):
        remote = open_target(f"freshsales://127.0.0.1:{port}", state_dir=tmp_path)
        try:
            r = _run(compiled, remote, tmp_path)
            assert r.status == "completed", r.message
            assert r.ok, r.counts
            assert remote.stats.throttled > 0
            assert normalised(compiled, remote) == expected  # reads are not faulted
        finally:
            remote.close()
