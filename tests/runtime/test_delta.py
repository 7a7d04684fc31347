"""Delta runs: ``settled_watermark`` as a property (instants, not text; ties; bad keys), and delta
runs end to end on tests/fixtures/operations2/run.fmap (changed, new, same-instant and shuffled
records; updates through the id map; idempotent second delta; a failure holds the watermark)."""

from __future__ import annotations

import json
import random
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "operations2"))
import ops2fix  # noqa: E402

from runtime.executor import RunOptions, check_invariant, run_migration  # noqa: E402
from runtime.executor.delta import settled_watermark  # noqa: E402
from runtime.state import StateStore  # noqa: E402

# -- settled_watermark as a property ------------------------------------------------------------

BASE = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
OFFSETS = [timedelta(0), timedelta(hours=-5), timedelta(hours=5, minutes=30), timedelta(hours=1)]


def _write(instant: datetime, style: int) -> str:
    """One instant in one of several spellings: Z, +00:00, another offset, with microseconds."""
    if style == 0:
        return instant.strftime("%Y-%m-%dT%H:%M:%SZ")
    if style == 1:
        return instant.isoformat()  # +00:00
    if style == 2:
        return instant.astimezone(timezone(OFFSETS[1])).isoformat()
    if style == 3:
        return instant.astimezone(timezone(OFFSETS[2])).isoformat()
    return instant.astimezone(timezone(OFFSETS[3])).isoformat(timespec="microseconds")


def _inst(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


row_sets = st.lists(
    st.tuples(st.integers(0, 12), st.integers(0, 4)),  # (minutes after BASE, spelling)
    min_size=0, max_size=25,
).map(lambda specs: [(f"k{i}", _write(BASE + timedelta(minutes=m * 7), s))
                     for i, (m, s) in enumerate(specs)])


def _expected(rows, bad):
    instants = sorted({_inst(ts) for _, ts in rows})
    bad_instants = [_inst(ts) for k, ts in rows if k in bad]
    first_bad = min(bad_instants) if bad_instants else None
    ok = [t for t in instants if first_bad is None or t < first_bad]
    if not ok:
        return None
    t = ok[-1]
    return t, {k for k, ts in rows if _inst(ts) == t}


def _check(rows, bad):
    got = settled_watermark(rows, bad)
    want = _expected(rows, bad)
    if want is None:
        assert got is None
        return
    assert got is not None
    ts, keys = got
    assert _inst(ts) == want[0], (ts, want)
    assert ts in {t for _, t in rows}  # one of the source's own spellings
    assert keys == want[1]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=row_sets, data=st.data())
def test_settled_watermark_without_bad_keys_at_the_boundary_instant(rows, data):
    """Random rows (in random order) and bad keys; every key at an instant holding a bad key is
    made bad too, which leaves the expected watermark unchanged (a good key spelled differently
    at a bad instant has its own test below)."""
    keys = [k for k, _ in rows]
    bad = set(data.draw(st.lists(st.sampled_from(keys), unique=True)) if keys else [])
    # an instant holding a bad key: make every key at it bad (the expected watermark is the same)
    bad_instants = {_inst(ts) for k, ts in rows if k in bad}
    bad |= {k for k, ts in rows if _inst(ts) in bad_instants}
    order = data.draw(st.permutations(rows))
    _check(list(order), bad)


@settings(max_examples=300, deadline=None)
@given(rows=row_sets)
def test_settled_watermark_no_bad_keys_is_latest_instant_and_all_its_keys(rows):
    _check(rows, set())


def test_settled_watermark_examples():
    z, plus = "2024-01-01T10:00:00Z", "2024-01-01T10:00:00+00:00"
    later_text_earlier_instant = "2024-01-01T11:30:00+02:00"  # 09:30Z: sorts after as text
    rows = [("a", plus), ("b", later_text_earlier_instant), ("c", z), ("d", None)]
    ts, keys = settled_watermark(rows, set())
    assert _inst(ts) == _inst(z) and keys == {"a", "c"}
    ts, keys = settled_watermark(rows, {"d"})  # no timestamp: cannot hold anything
    assert keys == {"a", "c"}
    ts, keys = settled_watermark(rows, {"a"})
    assert ts == later_text_earlier_instant and keys == {"b"}
    assert settled_watermark(rows, {"b"}) is None
    assert settled_watermark([], set()) is None


def test_settled_watermark_bad_key_at_same_instant_spelled_differently():
    rows = [("good", "2024-01-01T10:00:00Z"), ("bad", "2024-01-01T10:00:00+00:00"),
            ("early", "2024-01-01T09:00:00Z")]
    for order in (rows, rows[::-1]):
        ts, keys = settled_watermark(order, {"bad"})
        assert (ts, keys) == ("2024-01-01T09:00:00Z", {"early"})


# -- delta runs end to end ----------------------------------------------------------------------

T0 = "2024-05-01T08:00:00Z"
T1 = "2024-05-02T08:00:00Z"
T2 = "2024-05-03T08:00:00+00:00"
T_WM = "2024-05-04T08:00:00Z"  # the latest timestamp of the first run: its watermark
T_WM_OTHER = "2024-05-04T10:00:00+02:00"  # the same instant, spelled differently
T_NEW = "2024-05-06T09:00:00Z"

CLINICS = [{"id": "c1", "name": "North", "region": "N", "updated_at": T0},
           {"id": "c2", "name": "South", "region": "S", "updated_at": T0}]


def _patient(i, ts, appts=("Done",), status="Active", last=None):
    return {"id": f"p{i}", "last_name": last or f"Name{i}", "email": f"p{i}@x.com",
            "status": status, "clinic_id": f"c{1 + i % 2}", "doctor": "doc@example.com",
            "notes": f"notes {i}", "updated_at": ts,
            "appointments": [{"id": f"a{i}_{j}", "status": s} for j, s in enumerate(appts)]}


def _patients():
    return [_patient(1, T0), _patient(2, T1), _patient(3, T1), _patient(4, T2),
            _patient(5, T_WM), _patient(6, T_WM, appts=("Booked", "DNA")), _patient(7, T0)]


NOTES = [{"id": f"n{i}", "patient_id": f"p{i}", "body": f"note {i}", "updated_at": T1}
         for i in (1, 4, 6)]
WRITE_OPS = ("create", "upsert", "update", "delete", "upload_attachment")


class Env:
    def __init__(self, tmp: Path, module, patients):
        self.tmp, self.module = tmp, module
        self.src = ops2fix.write_src(tmp / "src", clinics=CLINICS, patients=patients, notes=NOTES)
        self.dest = ops2fix.store()
        self.state = StateStore(":memory:")

    def run(self, **opts):
        source = ops2fix.open_src(self.src)
        try:
            res = run_migration(self.module, source, self.dest, self.state, self.tmp / "stage",
                                source_id=str(self.src), options=RunOptions(**opts))
        finally:
            source.close()
        assert res.status == "completed", res.message
        check_invariant(res.counts)
        return res

    def write_patients(self, rows):
        (self.src / "patients.json").write_text(json.dumps(rows), "utf-8")

    def writes(self):
        return sum(self.dest.stats.by_operation.get(op, 0) for op in WRITE_OPS)

    def read_keys(self, run_id, m):
        return {k for (k,) in self.state.conn.execute(
            "SELECT source_key FROM outcomes WHERE run_id=? AND map=?", (run_id, m))}

    def check_unique(self):
        dups = self.dest._db.execute(
            "SELECT obj, external_id, COUNT(*) FROM records GROUP BY 1, 2 HAVING COUNT(*) > 1"
        ).fetchall()
        assert not dups

    def by_ext(self, obj):
        return {r["$external_id"]: r for r in self.dest.list_records(obj)}


@pytest.fixture(scope="module")
def module(tmp_path_factory):
    return ops2fix.compile_module(tmp_path_factory.mktemp("build"), "run")


def test_delta_reads_only_new_and_changed_records(tmp_path, module):
    env = Env(tmp_path, module, _patients())
    first = env.run()
    assert first.ok and first.counts["Patients"]["created"] == 7
    wm = env.state.get_watermark("patients")
    assert _inst(wm.modified_at) == _inst(T_WM) and wm.keys == {"p5", "p6"}
    ids_before = {k: r["id"] for k, r in env.by_ext("Patients").items()}

    rows = _patients()
    rows[1].update(last_name="Changed2", updated_at=T_NEW)     # changed record, newer timestamp
    rows[2].update(last_name="Changed3", updated_at=T_WM_OTHER)  # edited: the watermark's instant
    rows.append(_patient(8, T_NEW, appts=("Booked",)))           # new record
    rows.append(_patient(9, T_WM))                               # new record at the watermark
    rows[5]["last_name"] = "EditedAtTieNoBump"                   # tie key, timestamp not bumped
    random.Random(7).shuffle(rows)                               # rows out of order
    env.write_patients(rows)
    w0 = env.writes()
    second = env.run(delta=True)
    assert second.ok
    assert env.read_keys(second.run_id, "Patients") == {"p2", "p3", "p8", "p9"}
    assert second.counts["Patients"]["extracted"] == 4
    assert second.counts["Clinics"]["extracted"] == 0
    assert second.counts["Patient_Notes"]["extracted"] == 0
    created = sum(c["created"] for c in second.counts.values())
    updated = sum(c["updated"] for c in second.counts.values())
    assert second.counts["Patients"]["created"] == 2 and second.counts["Patients"]["updated"] == 2
    assert created == 2 + 2  # p8, p9 and their one visit each
    assert updated > 0
    assert env.writes() > w0  # (write calls are batched: counted per call)
    patients = env.by_ext("Patients")
    # updates went through the id map: same destination ids, new values
    assert {k: patients[k]["id"] for k in ids_before} == ids_before
    assert patients["Patients:p2"]["Last_Name"] == "Changed2"
    assert patients["Patients:p3"]["Last_Name"] == "Changed3"
    assert patients["Patients:p6"]["Last_Name"] == "Name6"  # same record, same timestamp: unseen
    assert set(patients) == {f"Patients:p{i}" for i in range(1, 10)}
    wm = env.state.get_watermark("patients")
    assert _inst(wm.modified_at) == _inst(T_NEW) and wm.keys == {"p2", "p8"}

    w1 = env.writes()
    third = env.run(delta=True)
    assert env.writes() == w1  # nothing new: no writes
    assert all(c["extracted"] == 0 for c in third.counts.values()), third.counts
    env.check_unique()
    visits = env.by_ext("Visits")
    assert len(visits) == 10  # p1..p9: one visit each, p6 two
    assert visits.keys() >= {"Visits:a6_0", "Visits:a6_1", "Visits:a8_0", "Visits:a9_0"}


def test_failed_record_holds_the_watermark_and_is_retried(tmp_path, module):
    rows = _patients()
    rows[3] = _patient(4, T2, appts=("Weird",))  # visit_status `_ -> error`: the visit fails
    env = Env(tmp_path, module, rows)
    first = env.run()
    assert first.counts["Visits"]["failed"] == 1 and not first.ok
    wm = env.state.get_watermark("patients")
    assert _inst(wm.modified_at) == _inst(T1) and wm.keys == {"p2", "p3"}  # below p4's T2

    w0 = env.writes()
    again = env.run(delta=True)  # unfixed: p4 read again, and everything after it
    assert env.read_keys(again.run_id, "Patients") == {"p4", "p5", "p6"}
    assert again.counts["Visits"]["failed"] == 1
    assert env.writes() == w0  # the rest come back unchanged: no writes
    assert _inst(env.state.get_watermark("patients").modified_at) == _inst(T1)

    rows[3]["appointments"][0]["status"] = "Done"  # fixed in the source, timestamp not bumped
    env.write_patients(rows)
    fixed = env.run(delta=True)
    assert fixed.ok
    assert "p4" in env.read_keys(fixed.run_id, "Patients")
    assert fixed.counts["Visits"]["created"] == 1
    assert "Visits:a4_0" in env.by_ext("Visits")
    wm = env.state.get_watermark("patients")
    assert _inst(wm.modified_at) == _inst(T_WM) and wm.keys == {"p5", "p6"}
    w1 = env.writes()
    final = env.run(delta=True)
    assert all(c["extracted"] == 0 for c in final.counts.values())
    assert env.writes() == w1
    env.check_unique()


# -- advance_watermarks (SQL over the stage) agrees with settled_watermark ---------------------

def _plan(*steps):
    from types import SimpleNamespace

    return SimpleNamespace(steps=[SimpleNamespace(name=n, source="patients", kind="map")
                                  for n in steps])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=row_sets, data=st.data())
def test_advance_watermarks_in_sql_matches_the_rule(rows, data):
    """The stage and the outcomes as a run leaves them (two maps over one object; the second
    splits records into parts ``k#1``, ``k#2``; outcomes missing, failed or loaded per part):
    the watermark stored is the one ``settled_watermark`` gives for the same rows."""
    import tempfile

    from runtime.executor.delta import advance_watermarks
    from runtime.executor.stage import Stage
    from runtime.sources.base import instant_parser
    from runtime.state import Outcome

    parse = instant_parser()
    fates = data.draw(st.lists(st.sampled_from(["loaded", "failed", "none"]),
                               min_size=2 * len(rows), max_size=2 * len(rows)))
    with tempfile.TemporaryDirectory() as d:
        stage = Stage(Path(d) / "stage")
        state = StateStore(":memory:")
        run_id = state.start_run("m")
        bad: set[str] = set()
        outs = []
        for i, (key, ts) in enumerate(rows):
            stage.add_root("patients", key, ts, parse(ts))
            for j, step in enumerate(("A", "B")):
                stage.add(step, key, "ready", payload={"x": 1}, source_object="patients")
                fate = fates[2 * i + j]
                if fate == "none":
                    bad.add(key)
                    continue
                bad |= {key} if fate == "failed" else set()
                parts = [key] if step == "A" else [f"{key}#1", f"{key}#2"]
                for n, part in enumerate(parts):
                    # a split record whose second part failed holds the watermark too
                    o = fate if n == len(parts) - 1 else "loaded"
                    outs.append(Outcome(step, part, o, "created" if o == "loaded" else "e"))
        state.record_outcomes(run_id, outs)
        stage.commit()
        advance_watermarks(_plan("A", "B"), stage, state, run_id)
        want = settled_watermark(rows, bad)
        got = state.get_watermark("patients")
        stage.close()
    if want is None:
        assert got is None
    else:
        assert got is not None and _inst(got.modified_at) == _inst(want[0])
        assert got.keys == want[1]


US = "%m/%d/%Y %I:%M %p"


def test_delta_reads_us_timestamps_as_instants(tmp_path, module):
    """A vendor format (Clinic Management's ``MM/DD/YYYY hh:mm AM``, New York time): a record
    edited on 07/01/2025 is newer than the watermark 12/30/2024 (as text it is older and a delta
    run would skip it); a value that does not parse is read by every delta run, never moves the
    watermark, and is reported."""
    class UsEnv(Env):
        def run(self, **opts):
            from runtime.sources import open_source

            source = open_source(f"json:{self.src}", options={
                **ops2fix.MODIFIED, "modified_format": US, "modified_tz": "America/New_York"})
            try:
                res = run_migration(self.module, source, self.dest, self.state,
                                    self.tmp / "stage", source_id=str(self.src),
                                    options=RunOptions(**opts))
            finally:
                source.close()
            assert res.status == "completed", res.message
            check_invariant(res.counts)
            return res

    rows = [_patient(1, "12/30/2024 09:00 AM"), _patient(2, "01/15/2025 10:00 AM"),
            _patient(3, "12/30/2024 11:00 PM"), _patient(4, "sometime in May")]
    env = UsEnv(tmp_path, module, rows)
    env.run()
    wm = env.state.get_watermark("patients")
    assert wm.modified_at == "01/15/2025 10:00 AM" and wm.keys == {"p2"}  # text max: 12/30...
    rows[0].update(last_name="Edited", updated_at="07/01/2025 10:00 AM")
    env.write_patients(rows)
    second = env.run(delta=True)
    assert env.read_keys(second.run_id, "Patients") == {"p1", "p4"}
    assert second.unreadable_modified == {"patients": 1}
    assert env.by_ext("Patients")["Patients:p1"]["Last_Name"] == "Edited"
    wm = env.state.get_watermark("patients")
    assert wm.modified_at == "07/01/2025 10:00 AM" and wm.keys == {"p1"}
    third = env.run(delta=True)
    assert env.read_keys(third.run_id, "Patients") == {"p4"}  # only the unreadable one


def _watermark_peak(n: int, tmp: Path) -> int:
    """Python heap peak (tracemalloc) while advancing the watermark over n staged roots, each
    with its own timestamp and a loaded outcome; the last one failed."""
    import tracemalloc

    from runtime.executor.delta import advance_watermarks
    from runtime.executor.stage import Stage
    from runtime.state import Outcome

    stage = Stage(tmp / f"stage{n}")
    state = StateStore(tmp / f"state{n}.sqlite")
    run_id = state.start_run("m")
    outs = []
    for i in range(n):
        ts = BASE + timedelta(seconds=i)
        stage.add_root("patients", f"k{i}", ts.isoformat(), ts.timestamp())
        stage.add("A", f"k{i}", "ready", payload={"x": 1}, source_object="patients")
        outs.append(Outcome("A", f"k{i}", "failed" if i == n - 1 else "loaded",
                            "e" if i == n - 1 else "created"))
    state.record_outcomes(run_id, outs)
    stage.commit()
    del outs
    tracemalloc.start()
    try:
        moved = advance_watermarks(_plan("A"), stage, state, run_id)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert _inst(moved["patients"]) == BASE + timedelta(seconds=n - 2)  # below the failed one
    stage.close()
    state.close()
    return peak


def test_advancing_watermarks_holds_no_per_record_memory(tmp_path):
    """Ten times the records must not cost ten times the memory: the rule runs in SQL (the
    version that built sets of every key in Python grew linearly)."""
    small, large = _watermark_peak(2_000, tmp_path), _watermark_peak(20_000, tmp_path)
    assert large < small * 2 + 64 * 1024, (small, large)


def test_a_stage_from_before_instants_is_staged_again(tmp_path):
    """A resumed run whose stage was written before roots carried instants must not reuse it
    (its watermark query would find no instants): the stage reports itself incomplete."""
    import sqlite3

    from runtime.executor.stage import Stage

    path = tmp_path / "stage.run1"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE roots (source_object TEXT NOT NULL, root_key TEXT NOT NULL, "
                "modified_at TEXT, PRIMARY KEY (source_object, root_key)) WITHOUT ROWID")
    old.execute("INSERT INTO roots VALUES ('patients', 'p1', '2024-01-01T00:00:00Z')")
    old.execute("CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)")
    old.execute("INSERT INTO meta VALUES ('complete', '1')")
    old.commit()
    old.close()
    stage = Stage(path)
    try:
        assert not stage.complete()
        stage.add_root("patients", "p1", "2024-01-01T00:00:00Z", 1704067200.0)
        assert stage.conn.execute("SELECT instant FROM roots").fetchall() == [(1704067200.0,)]
    finally:
        stage.close()
