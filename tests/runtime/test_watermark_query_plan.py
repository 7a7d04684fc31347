"""The watermark step at the end of a run reads the whole stage; what it may not do is build
something the size of the stage in SQLite's memory. The queries it runs, explained while the stage
is attached, use no temporary b-tree (a GROUP BY's or an automatic index's: those grew a
1,000,000-record run's peak RSS) and find a record's outcomes by key, never by scanning the map's;
the attached stage has the state file's bounded page cache and mmap, which an ATTACH alone does not
give it. The state carries no ANALYZE statistics, so a small stage is planned like a large one.
Split parts' key range ("k#" up to "k$") is checked against the neighbouring keys it must not take
in."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace

import pytest

from runtime.executor.delta import advance_watermarks
from runtime.executor.stage import Stage
from runtime.sources.base import instant_parser
from runtime.state import Outcome, StateStore

PER_SCHEMA = ("cache_size", "mmap_size")
T1, T2, T3 = "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z", "2024-05-01T12:00:00Z"


def _plan(*steps: str) -> SimpleNamespace:
    return SimpleNamespace(steps=[SimpleNamespace(name=n, source="patients", kind="map")
                                  for n in steps])


def _stage(tmp_path, roots: dict[str, str]) -> Stage:
    """A stage with ``roots`` (key -> modified-at), each staged once by maps A and B."""
    parse = instant_parser()
    stage = Stage(tmp_path / "stage")
    for key, ts in roots.items():
        stage.add_root("patients", key, ts, parse(ts))
        for step in ("A", "B"):
            stage.add(step, key, "ready", payload={"x": 1}, source_object="patients")
    stage.commit()
    return stage


def _spy_on_attach(state: StateStore) -> dict:
    """Wrap ``state.attached`` to record, inside the block, the attached schema's pragmas and the
    plan of every SELECT the block ran (explained before the stage is detached)."""
    seen: dict = {"pragmas": None, "plans": {}}
    attached = state.attached

    @contextmanager
    def spy(path: str, schema: str) -> Iterator[None]:
        with attached(path, schema):
            seen["pragmas"] = {p: state.conn.execute(f"PRAGMA {schema}.{p}").fetchone()[0]
                               for p in PER_SCHEMA}
            statements: list[str] = []
            state.conn.set_trace_callback(statements.append)
            try:
                yield
            finally:
                state.conn.set_trace_callback(None)
            for sql in statements:
                if sql.lstrip().upper().startswith("SELECT"):
                    seen["plans"][sql] = [row[3] for row in
                                          state.conn.execute("EXPLAIN QUERY PLAN " + sql)]

    state.attached = spy  # type: ignore[method-assign]
    return seen


def test_the_watermark_queries_need_no_temp_b_tree_and_probe_outcomes_by_key(tmp_path):
    stage = _stage(tmp_path, {"k1": T1, "k2": T2, "k3": T3})
    with StateStore(tmp_path / "state.sqlite") as state:
        run_id = state.start_run("m")
        state.record_outcomes(run_id, [
            Outcome("A", "k1", "loaded", "created"), Outcome("A", "k2", "loaded", "created"),
            Outcome("A", "k3", "failed", "e"),
            Outcome("B", "k1#1", "loaded", "created"), Outcome("B", "k1#2", "loaded", "created"),
            Outcome("B", "k2", "skipped", "r"), Outcome("B", "k3", "loaded", "created")])
        seen = _spy_on_attach(state)
        moved = advance_watermarks(_plan("A", "B"), stage, state, run_id)
        main = {p: state.conn.execute(f"PRAGMA main.{p}").fetchone()[0] for p in PER_SCHEMA}
    stage.close()
    assert moved == {"patients": T2}  # k3 failed in A

    assert seen["pragmas"] == main, "the attached stage runs with SQLite's default memory"
    outcome_queries = {sql: plan for sql, plan in seen["plans"].items() if "outcomes" in sql}
    assert len(outcome_queries) == 2, seen["plans"]  # one a map
    for sql, plan in seen["plans"].items():
        assert not [d for d in plan if "TEMP B-TREE" in d or "AUTOMATIC" in d], (sql, plan)
    for sql, plan in outcome_queries.items():
        probes = [d for d in plan if re.search(r"\b(o|outcomes)\b", d)]
        assert probes and all("source_key" in d for d in probes), (sql, plan)


def test_an_attached_database_gets_the_bounded_pragmas_only_inside_the_block(tmp_path):
    path = str(tmp_path / "other.sqlite")
    with StateStore(tmp_path / "state.sqlite") as state:
        main = {p: state.conn.execute(f"PRAGMA main.{p}").fetchone()[0] for p in PER_SCHEMA}
        state.conn.execute("ATTACH DATABASE ? AS plain", (path,))
        plain = state.conn.execute("PRAGMA plain.cache_size").fetchone()[0]
        state.conn.execute("DETACH DATABASE plain")
        assert plain != main["cache_size"]  # else the next assertion proves nothing
        with state.attached(path, "stg"):
            got = {p: state.conn.execute(f"PRAGMA stg.{p}").fetchone()[0] for p in PER_SCHEMA}
        assert got == main
        assert "stg" not in [r[1] for r in state.conn.execute("PRAGMA database_list")]


@pytest.mark.parametrize("k_outcomes, want", [
    pytest.param([], T1, id="no-outcome-of-its-own"),
    pytest.param(["k#2"], T3, id="a-part-settles-it"),
    pytest.param(["k#dup7"], T3, id="a-duplicate-settles-it"),
])
def test_a_records_outcomes_are_its_key_and_parts_not_its_neighbours(tmp_path, k_outcomes, want):
    """Neighbours of "k" on either side of the "k#" .. "k$" range, all loaded, never stand in
    for "k" (at T2), and its own parts do."""
    neighbours = ["k!", "k\"x", "k$", "k$#1", "k%", "k1", "j#k"]
    stage = _stage(tmp_path, {"k": T2, "z": T3} | {n: T1 for n in neighbours})
    with StateStore(tmp_path / "state.sqlite") as state:
        run_id = state.start_run("m")
        state.record_outcomes(run_id, [
            Outcome(step, key, "loaded", "created")
            for step in ("A", "B") for key in [*neighbours, "z", *k_outcomes]])
        moved = advance_watermarks(_plan("A", "B"), stage, state, run_id)
    stage.close()
    assert moved == {"patients": want}
