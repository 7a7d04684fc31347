"""End to end: ``mappings/aeronaclinic_to_pipedrive.fmap`` on the committed sample
``mappings/samples/aeronaclinic_api`` through ``run_migration`` into ``sandbox:pipedrive`` (the
Pipedrive HTTP emulator, in process), once fault-free and once with injected lost responses,
timeouts and throttles. Pipedrive has no upsert, so a lost create is only safe because the executor
asks ``find_by_external_id`` before re-sending: the faulted run must hold exactly what the
fault-free run holds (0 duplicates, 0 lost records, files included)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from runtime.executor import LoadOptions, RunOptions, run_migration
from runtime.sources import open_source
from runtime.state import StateStore
from runtime.targets import open_target
from tests.compiled import compile_and_load
from tests.scratch import scratch_dir

ROOT = Path(__file__).resolve().parent.parent.parent
MAPPING = ROOT / "mappings" / "aeronaclinic_to_pipedrive.fmap"
SAMPLE = ROOT / "mappings" / "samples" / "aeronaclinic_api"
USERS = ROOT / "mappings" / "sandbox" / "pipedrive_users.json"
OBJECTS = ("Organization", "Person", "Activity", "Deal", "Product", "Note")
FAULTS = "seed=11,lost_response_rate=0.12,timeout_rate=0.03,throttle_rate=0.08"


@pytest.fixture(scope="module")
def work():
    with scratch_dir("fmap-pd-e2e-") as d:
        yield d


@pytest.fixture(scope="module")
def compiled(work):
    return compile_and_load(MAPPING, work, display="mappings/aeronaclinic_to_pipedrive.fmap")


def _run(compiled, base: Path, faults: str | None):
    base.mkdir()
    uri = f"sandbox:pipedrive?users={USERS}&db={base / 'org.sqlite'}&clock=virtual"
    if faults:
        uri += f"&faults={faults}"
    dest = open_target(uri, schema_changes=list(compiled.PLAN.schema_changes), state_dir=base)
    source = open_source(str(SAMPLE))
    load = LoadOptions(files_root=SAMPLE)
    load.sleep = lambda s: None
    load.seed = 7
    try:
        with StateStore(base / "state.sqlite") as state:
            result = run_migration(compiled, source, dest, state, base / "stage",
                                   source_id=str(SAMPLE), options=RunOptions(load=load))
    finally:
        source.close()
    return result, dest


def _snapshot(dest) -> dict:
    """Every record keyed by what identifies it (external id; a note by its content and parent,
    a file by name and parent), links replaced by the linked record's key."""
    records = {o: dest.list_records(o) for o in OBJECTS}
    key_of: dict[tuple[str, str], str] = {}
    for o, rs in records.items():
        for r in rs:
            key_of[(o, r["id"])] = r.get("$external_id") or f"{o}:{r.get('content', '')[:80]}"
    links = {"org_id": "Organization", "person_id": "Person", "deal_id": "Deal"}
    out: dict = {}
    for o, rs in records.items():
        keys = []
        for r in rs:
            parents = tuple(key_of.get((t, r.get(f) or ""), "?") for f, t in links.items()
                            if r.get(f))
            keys.append((key_of[(o, r["id"])], parents))
        out[o] = Counter(keys)
    files = dest.list_records("File")
    out["File"] = Counter((f["name"], key_of.get(("Person", f.get("person_id") or ""), "?"),
                           f["file_size"]) for f in files)
    return out


@pytest.fixture(scope="module")
def clean(compiled, work):
    result, dest = _run(compiled, work / "clean", None)
    yield result, _snapshot(dest), dest
    dest.close()


def test_fault_free_run_loads_everything(clean):
    result, snap, dest = clean
    assert result.status == "completed", result.message
    failed = {k: c["failed"] for k, c in result.counts.items() if c["failed"]}
    assert not failed
    for o in OBJECTS:
        assert snap[o], o
        dupes = [k for k, n in snap[o].items() if n > 1]
        assert not dupes, (o, dupes[:3])
    assert sum(snap["File"].values()) == result.counts["File"]["created"]
    assert all(k[1] != "?" for k in snap["File"])  # every file is on a loaded person
    persons = {k[0]: k[1] for k in snap["Person"]}
    assert all(parents and parents[0] != "?" for parents in persons.values())
    sb = dest.sandbox
    assert sb.throttled == 0 and sb.ledger.spent > 0


def test_lost_responses_and_throttles_give_no_duplicates_and_no_losses(compiled, work, clean):
    _, expected, _ = clean
    result, dest = _run(compiled, work / "faulty", FAULTS)
    try:
        assert result.status == "completed", result.message
        plan = dest.sandbox.faults
        kinds = Counter(d.kind for d in plan.log)
        assert kinds["lost_response"] >= 10 and kinds["throttle"] >= 5, kinds
        assert dest.sandbox.throttled >= 5
        got = _snapshot(dest)
        for o in (*OBJECTS, "File"):
            assert got[o] == expected[o], (o, got[o] - expected[o], expected[o] - got[o])
        failed = {k: c["failed"] for k, c in result.counts.items() if c["failed"]}
        assert not failed
        assert dest.sandbox.ledger.locked_until == {}  # never reached the 403 lockout
    finally:
        dest.close()


# ---------------------------------------------------------------------- loopback
TOKEN = "pd-loopback-token"


def _schema_apply(port: int, monkeypatch, cwd: Path) -> None:
    """`fmap schema apply` over loopback creates the person/org/deal/product fields through
    POST /api/v2/{entity}Fields; the activity fields (no API) came with ``--option mapping=``."""
    from typer.testing import CliRunner

    from fmap.cli import app

    monkeypatch.chdir(cwd)
    runner = CliRunner()
    target = ["--target", f"pipedrive://127.0.0.1:{port}"]
    dry = runner.invoke(app, ["schema", "apply", str(MAPPING), *target])
    assert dry.exit_code == 0, dry.output
    assert "+ field  Person.Source_System_ID" in dry.output and "Activity." not in dry.output
    done = runner.invoke(app, ["schema", "apply", str(MAPPING), *target, "--apply"])
    assert done.exit_code == 0, done.output
    again = runner.invoke(app, ["schema", "apply", str(MAPPING), *target])
    assert "already has every module and field" in again.output, again.output


def _run_remote(compiled, base: Path, port: int):
    base.mkdir()
    # a burst limit far above the plan's: the served windows run on the wall clock, and the
    # test is about what arrives, not about waiting (the ceiling bench measures the pacing)
    dest = open_target(f"pipedrive://127.0.0.1:{port}?burst={BURST}&sent_log={base / 'sent.db'}")
    source = open_source(str(SAMPLE))
    load = LoadOptions(files_root=SAMPLE, max_retries=12)
    load.sleep = lambda s: None
    try:
        with StateStore(base / "state.sqlite") as state:
            result = run_migration(compiled, source, dest, state, base / "stage",
                                   source_id=str(SAMPLE), options=RunOptions(load=load))
    finally:
        source.close()
    return result, dest


BURST = 100_000


def _serve_args(extra: list[str] = ()) -> list[str]:
    return ["--users", str(USERS), "--option", f"mapping={MAPPING}", "--option",
            f"burst={BURST}", *extra]


def test_loopback_matches_in_process(compiled, work, clean, tmp_path, monkeypatch):
    from tests.dialects.served import serve

    _, expected, _ = clean
    with serve(tmp_path, "pipedrive", _serve_args(), TOKEN) as port:
        monkeypatch.setenv("PIPEDRIVE_API_TOKEN", TOKEN)
        monkeypatch.delenv("PIPEDRIVE_ACCESS_TOKEN", raising=False)
        _schema_apply(port, monkeypatch, tmp_path)
        result, dest = _run_remote(compiled, tmp_path / "remote", port)
        try:
            assert result.status == "completed", result.message
            got = _snapshot(dest)
        finally:
            dest.close()
    clean_result = clean[0]
    assert result.counts == clean_result.counts
    for o in (*OBJECTS, "File"):
        assert got[o] == expected[o], (o, got[o] - expected[o], expected[o] - got[o])


def test_loopback_faults(compiled, tmp_path, clean, monkeypatch):
    """Lost responses, 429s and 500s over real HTTP: the same org as the fault-free run."""
    from tests.dialects.served import serve

    _, expected, _ = clean
    faults = ("seed=5,lost_response_rate=0.1,throttle_rate=0.05,batch_failure_rate=0.05,"
              "throttle_retry_after=0.01")
    with serve(tmp_path, "pipedrive", _serve_args(["--faults", faults]), TOKEN) as port:
        monkeypatch.setenv("PIPEDRIVE_API_TOKEN", TOKEN)
        monkeypatch.delenv("PIPEDRIVE_ACCESS_TOKEN", raising=False)
        _schema_apply(port, monkeypatch, tmp_path)
        result, dest = _run_remote(compiled, tmp_path / "remote", port)
        try:
            assert result.status == "completed", result.message
            assert dest.stats.throttled > 0
            got = _snapshot(dest)
        finally:
            dest.close()
    failed = {k: c["failed"] for k, c in result.counts.items() if c["failed"]}
    assert not failed
    for o in (*OBJECTS, "File"):
        dupes = [k for k, n in got[o].items() if n > 1]
        assert not dupes, (o, dupes[:3])
        assert got[o] == expected[o], (o, got[o] - expected[o], expected[o] - got[o])
