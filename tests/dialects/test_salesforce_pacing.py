"""Salesforce pacing on by default: the clients of ``open_sandbox`` / ``open_client`` count every
real request (Bulk API 2.0's included) against the org's rolling allocation, learn what other
integrations spent from ``Sforce-Limit-Info``, wait for the window to free up, and stop a run
with a resumable message (before any 403) when the wait would exceed ``max_wait``. The sandbox
enforces the rolling window on the same fake clock, so windows pass in no wall time."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from runtime.destinations.base import FatalError, WriteItem
from runtime.dialects import get_dialect
from runtime.dialects.salesforce import open_sandbox
from runtime.dialects.salesforce.ratelimit import RollingWindowPacer
from runtime.executor import LoadOptions, RunOptions, load_compiled, run_migration
from runtime.schema.changes import apply_changes
from runtime.sources import open_source
from runtime.state import StateStore
from runtime.targets import sandbox_users

ROOT = Path(__file__).resolve().parents[2]
MAPPING = ROOT / "mappings" / "aeronaclinic_to_salesforce.fmap"
SAMPLE = ROOT / "mappings" / "samples" / "aeronaclinic_api"
USERS = ROOT / "mappings" / "sandbox" / "salesforce_users.json"
WINDOW = 3600.0  # the 24 h allocation's window, scaled down


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += max(s, 0.0)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    from compiler.compile import compile_path

    res = compile_path(MAPPING, display="mappings/aeronaclinic_to_salesforce.fmap")
    assert res.ok, [d.message for d in res.diagnostics]
    out = tmp_path_factory.mktemp("build") / "sf_pacing.py"
    out.write_text(res.python, "utf-8")
    return load_compiled(out, name="fmap_sf_pacing")


def _org(module, base: Path, clock: Clock, **options):
    schema = apply_changes(get_dialect("salesforce").standard_schema(),
                           list(module.PLAN.schema_changes), get_dialect("salesforce"))
    base.mkdir(parents=True, exist_ok=True)
    return open_sandbox(schema, base / "org.sqlite", sandbox_users(USERS), {
        "api_window": WINDOW, "api_clock": clock, "api_sleep": clock.sleep, **options})


def _run(module, base: Path, dest):
    src = base / "src"
    shutil.copytree(SAMPLE, src)
    source = open_source(str(src))
    try:
        with StateStore(base / "state.sqlite") as state:
            return run_migration(module, source, dest, state, base / "stage",
                                 source_id=str(src), options=RunOptions(load=LoadOptions(
                                     files_root=src, sleep=lambda s: None, seed=7)))
    finally:
        source.close()


def _clean_run_requests(module, base: Path) -> int:
    """Requests a run of the sample takes on an idle org."""
    clock = Clock()
    dest = _org(module, base, clock, api_limit="100000")
    try:
        _run(module, base, dest)
        return dest.sandbox.requests
    finally:
        dest.close()


def test_run_on_a_busy_org_waits_for_the_window_and_never_meets_a_403(compiled, tmp_path):
    need = _clean_run_requests(compiled, tmp_path / "idle")
    limit = need + 40
    clock = Clock()
    # other integrations already spent all but 20 requests of the window: the run needs more
    dest = _org(compiled, tmp_path / "busy", clock, api_limit=str(limit),
                api_used=str(limit - 20), api_reserve="0", max_wait=str(2 * WINDOW))
    try:
        result = _run(compiled, tmp_path / "busy", dest)
        sb = dest.sandbox
        assert sb.limited == 0  # not one 403
        assert sb.requests == need
        assert (result.status, result.message) == ("completed", None), result.counts
        assert sb.store.count("Contact") > 0
        pacer = dest.pacer
        assert pacer.waits >= 1 and clock.t >= 1000.0 + WINDOW  # waited for the window
        assert pacer.elsewhere == limit - 20  # learnt from Sforce-Limit-Info
        assert pacer.sent == need
    finally:
        dest.close()


def test_wait_beyond_max_wait_stops_the_run_resumably_before_any_403(compiled, tmp_path):
    clock = Clock()
    dest = _org(compiled, tmp_path, clock, api_limit="200", api_used="180", api_reserve="0.05",
                max_wait="600")
    try:
        result = _run(compiled, tmp_path, dest)
        assert result.status == "stopped"
        msg = result.message or ""
        assert "190 of 200 requests" in msg and "10 kept in reserve" in msg
        assert "fmap run --resume" in msg and "403" in msg
        sb = dest.sandbox
        assert sb.limited == 0 and sb.requests == 10  # the reserve stays the admin's
        assert sb.api_used == 190
        assert clock.t == 1000.0  # it did not sit out the window
    finally:
        dest.close()


def test_bulk_upsert_counts_every_request_of_its_job(tmp_path):
    clock = Clock()
    schema = get_dialect("salesforce").standard_schema()
    c = open_sandbox(schema, tmp_path / "o.sqlite", None, {
        "api_window": WINDOW, "api_clock": clock, "api_sleep": clock.sleep,
        "api_limit": "10", "api_used": "6", "api_reserve": "0", "max_wait": str(2 * WINDOW),
        "bulk_threshold": "5"})
    try:
        items = [WriteItem(f"c{i}", f"c{i}", {"LastName": f"P{i}"}) for i in range(20)]
        results = c.upsert("Contact", items)
        assert all(r.ok for r in results)
        sb = c.sandbox
        assert sb.calls and any("jobs/ingest" in k for k in sb.calls)
        assert sb.requests >= 6  # create, upload, close, poll(s), results
        assert c.pacer.sent == sb.requests  # every one of them went through the pacer
        assert sb.limited == 0  # 4 free at the start: the job waited for the window mid-way
        assert c.pacer.waits >= 1 and clock.t >= 1000.0 + WINDOW
    finally:
        c.close()


def test_pacing_off_is_an_explicit_opt_out(tmp_path):
    c = open_sandbox(get_dialect("salesforce").standard_schema(), tmp_path / "o.sqlite", None,
                     {"api_limit": "3", "api_pacing": "off"})
    try:
        assert c.pacer is None
        for _ in range(3):
            c.count("Account")
        with pytest.raises(FatalError, match="used up"):
            c.count("Account")
        assert c.sandbox.limited == 1  # the org's own enforcement, measured
    finally:
        c.close()


def test_pacer_counts_in_bounded_buckets_and_learns_the_orgs_total():
    clock = Clock()
    p = RollingWindowPacer(1_000_000, 86400.0, clock=clock, sleep=clock.sleep)
    for _ in range(50_000):
        p()
        clock.t += 0.5
    assert p.used == 50_000
    assert len(p._buckets) <= 1441  # noqa: SLF001 (one per minute, not one per request)
    p.observe(60_000, 2_000_000)  # the org counted 10,000 more, and has add-ons
    assert (p.allocation, p.used, p.elsewhere) == (2_000_000, 60_000, 10_000)
    p.observe(55_000, 2_000_000)  # below what is counted: nothing to add
    assert p.used == 60_000
    clock.t += 86400.0
    assert p.used == 0
