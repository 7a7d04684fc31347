"""Crash + resume: SIGKILL the executor at seeded random points and resume until done.

The fixture migration (tests/fixtures/executor/exec.fmap: clinics, patients with nested
appointments, notes; routing, merges, splits, a deferred Clinics<->Patients cycle) runs in a child
process (``crash_driver.py``) into a file-backed SandboxStore. Kill points are chosen per seed:

- by wall-clock delay after the child starts (anywhere: staging, preflight, loading, journaling);
- by deterministic hooks (``FMAP_TEST_KILL_AT=<event>:<n>``, implemented in the driver only):
  before a write call is sent, after the store committed it but before the reply returns (the
  lost-response position), after plan_ops / after mark_sent / before confirm / after confirm, and
  before outcome bookkeeping.

Each seed resumes (``RunOptions(resume=run_id)``) until the run completes, then asserts against a
crash-free reference run of the same source: no duplicates by external id, nothing missing, no
orphaned lookups or owners, the same per-map counts (so the counts invariant holds), no unresolved
journal entries, one run only, and the same final store.

Files: modes with ``files`` run the fixture's files variant (``execfix`` ``files=True``: ``attach``
on the Patients map, documents -> Attachments of patients), with two more hooks, before an upload
is sent (``upload``) and after the store committed it but before the reply returns (``uploaded``).
The store comparison then covers every record's files (name, size, sha256: none duplicated, none
missing), and rolling the completed run back leaves the store as it was before the run, files
included (a bug there is the one the files journal fixed:
a run killed mid-upload resumed with records "loaded" and their files missing).

Store comparison: the SandboxStore's ids come from a per-object counter, so a record's id depends on
the order in which records were created. A resume re-sends abandoned batches and recovers others by
external-id lookup, which may create records in a different order than the crash-free run (it is
not a defect for a record to get ``visits-000412`` instead of ``visits-000411``). So the snapshots
are compared keyed by (object, external id), with lookup values rewritten to the external id of the
record they point to (``execfix.canonical_snapshot``): every field of every record, and what each
lookup points to, must be equal; only the opaque id strings may differ. Timestamps and attachment
ids are already outside ``snapshot()``.

The children are forked from the test process (``os.fork`` + ``crash_driver.main``: the driver's
code, no interpreter start-up) except a few seeds that run the driver script with ``subprocess``.
CI: 60 seeds (3 x 5,000 records, 49 x 400, 8 x 400 with files) in well under 90 s on two cores;
the long soak is ``bench/crash_soak.py`` (``--files`` for the files variant).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import pytest

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "executor"
sys.path.insert(0, str(FIX))
import crash_driver  # noqa: E402
import execfix  # noqa: E402

from runtime.executor import check_invariant  # noqa: E402
from runtime.operations import rollback_run  # noqa: E402
from runtime.state import StateStore  # noqa: E402

DRIVER = FIX / "crash_driver.py"
EVENTS = ("send", "reply", "planned", "sent", "confirm", "confirmed", "outcome")
FILE_EVENTS = ("upload", "uploaded")
FAULTS = {"seed": 11, "lost_response_rate": 0.05, "timeout_rate": 0.03, "throttle_rate": 0.03,
          "batch_failure_rate": 0.02, "record_error_rate": 0.01}


def scratch_root() -> Path:
    """tmpfs when there is one: the state store fsyncs every commit (synchronous=FULL), which is
    about power loss; a SIGKILL loses nothing the kernel already has, so tmpfs tests the same."""
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())
    return Path(tempfile.mkdtemp(prefix="fmap-crash-", dir=base))


def run_child(args: list[str], *, kill_at: str | None = None, kill_after: float | None = None,
              use_exec: bool = False) -> str:
    """Run the driver once; returns "done", "killed" or raises on any other exit."""
    env_kill = kill_at or ""
    if use_exec:
        env = {**os.environ, "FMAP_TEST_KILL_AT": env_kill}
        proc = subprocess.Popen([sys.executable, str(DRIVER), *args], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if kill_after is not None:
            try:
                proc.wait(timeout=kill_after)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate()
        rc = proc.returncode
        if rc == -signal.SIGKILL:
            return "killed"
        assert rc == 0, f"driver exited {rc}: {err.decode()[-3000:]}"
        return "done"
    pid = os.fork()
    if pid == 0:  # child: the driver's main, then _exit (no pytest teardown in the child)
        code = 3
        try:
            os.environ["FMAP_TEST_KILL_AT"] = env_kill
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            code = crash_driver.main(args)
        except BaseException:
            Path(args[2], "child_error.txt").write_text(traceback.format_exc(), "utf-8")
        finally:
            os._exit(code)
    if kill_after is not None:
        deadline = time.monotonic() + kill_after
        while True:
            wpid, status = os.waitpid(pid, os.WNOHANG)
            if wpid:
                return _status(status, args)
            if time.monotonic() >= deadline:
                os.kill(pid, signal.SIGKILL)
                break
            time.sleep(0.005)
    _, status = os.waitpid(pid, 0)
    return _status(status, args)


def _status(status: int, args: list[str]) -> str:
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL:
        return "killed"
    rc = os.waitstatus_to_exitcode(status)
    if rc != 0:
        err = Path(args[2], "child_error.txt")
        raise AssertionError(f"driver exited {rc}: {err.read_text() if err.exists() else ''}")
    return "done"


@dataclass
class Reference:
    src: Path
    mode: str
    args: list[str]
    counts: dict
    events: dict
    duration: float
    snapshot: dict
    ext: set[str] = field(default_factory=set)

    @property
    def files(self) -> bool:
        return "files" in self.mode

    @property
    def events_to_kill(self) -> tuple[str, ...]:
        return EVENTS + FILE_EVENTS if self.files else EVENTS


def mode_args(mode: str) -> list[str]:
    out = []
    if "no-upsert" in mode:
        out.append("--no-upsert")
    if "faults" in mode:
        out += ["--faults", json.dumps(FAULTS)]
    if "files" in mode:
        out.append("--files")
    return out


_REFS: dict[tuple[str, str], Reference] = {}


def reference(root: Path, module_py: Path, src: Path, mode: str) -> Reference:
    """The crash-free run of a source in a mode (computed once per test module)."""
    if (str(src), mode) not in _REFS:
        _REFS[(str(src), mode)] = _reference(root, module_py, src, mode)
    return _REFS[(str(src), mode)]


def _reference(root: Path, module_py: Path, src: Path, mode: str) -> Reference:
    work = root / f"ref-{src.name}-{mode}"
    extra = mode_args(mode)
    t0 = time.monotonic()
    assert run_child([str(module_py), str(src), str(work), *extra]) == "done"
    duration = time.monotonic() - t0
    res = json.loads((work / "result.json").read_text())
    assert res["status"] == "completed", res
    check_invariant(res["counts"])
    dest = execfix.store(work / "store.sqlite", files="files" in mode)
    try:
        execfix.check_store(dest)
        snap = execfix.canonical_snapshot(dest)
        ext = {e for (e,) in dest._db.execute("SELECT external_id FROM records")}
    finally:
        dest.close()
    ref = Reference(src, mode, extra, res["counts"], res["events"], duration, snap, ext)
    if ref.files:  # else the files checks below would pass on a run that uploaded nothing
        with_files = [k for k, r in snap.items() if r["attachments"]]
        assert len(with_files) >= len(snap) // 10, len(with_files)
        assert any(len(snap[k]["attachments"]) > 1 for k in with_files)
    return ref


def seed_work(root: Path, seed: int, ref: Reference) -> Path:
    return root / f"seed{seed}-{ref.src.name}-{ref.mode}"


def crash_seed(seed: int, ref: Reference, root: Path, module_py: Path, *,
               use_exec: bool = False) -> list[str]:
    """Kill the driver 1-3 times at seeded points, resume to completion, verify. Returns the log."""
    rng = random.Random(seed)
    work = seed_work(root, seed, ref)
    args = [str(module_py), str(ref.src), str(work), *ref.args]
    log = []
    res: dict = {"status": "killed"}
    for _ in range(rng.randint(1, 3)):
        (work / "result.json").unlink(missing_ok=True)
        if use_exec or rng.random() < 0.3:
            # exec'd children spend ~0.8 s importing before they do anything
            delay = rng.uniform(0.02, ref.duration) + (0.8 if use_exec else 0.0)
            how = run_child(args, kill_after=delay, use_exec=use_exec)
            log.append(f"after {delay:.2f}s: {how}")
        else:
            ev = rng.choice(ref.events_to_kill)
            n = rng.randint(1, max(1, ref.events.get(ev, 1)))
            how = run_child(args, kill_at=f"{ev}:{n}")
            log.append(f"{ev}:{n}: {how}")
        if how == "done":
            res = json.loads((work / "result.json").read_text())
            if res["status"] == "completed":
                break
    for _ in range(10):
        if res["status"] == "completed":
            break
        (work / "result.json").unlink(missing_ok=True)
        assert run_child(args) == "done"
        res = json.loads((work / "result.json").read_text())
        if res["status"] != "completed":
            log.append(f"resumed: {res['status']} ({res['message']})")
    verify(work, ref, res, log)
    return log


def verify(work: Path, ref: Reference, res: dict, log: list[str]) -> None:
    where = f"{work.name}: {log}"
    assert res["status"] == "completed", where
    check_invariant(res["counts"])
    assert all(c["pending"] == 0 for c in res["counts"].values()), where
    assert res["counts"] == ref.counts, where
    dest = execfix.store(work / "store.sqlite", files=ref.files)
    state = StateStore(work / "state.sqlite")
    try:
        execfix.check_store(dest, expect_ext=ref.ext)  # 0 duplicates, 0 missing, 0 orphans
        snap = execfix.canonical_snapshot(dest)
        if ref.files:
            assert_same_files(snap, ref.snapshot, where)
        assert snap == ref.snapshot, where
        runs = state.runs()
        assert len(runs) == 1 and runs[0].status == "completed", where
        assert state.unresolved_ops(runs[0].id) == [], where
    finally:
        dest.close()
        state.close()


def assert_same_files(snap: dict, ref: dict, where: str) -> None:
    """Every record's files as in the reference: a file uploaded twice, or missing, is named (the
    whole-snapshot comparison that follows would only say the snapshots differ)."""
    def files(s: dict) -> dict:
        return {k: [(a["name"], a["size"], a["sha256"]) for a in r["attachments"]]
                for k, r in s.items() if r["attachments"]}

    got, want = files(snap), files(ref)
    wrong = {k: (got.get(k, []), want.get(k, [])) for k in got.keys() | want.keys()
             if got.get(k) != want.get(k)}
    assert not wrong, f"files differ (got, want) on {len(wrong)} records: " \
                      f"{dict(sorted(wrong.items())[:5])} ({where})"


def rollback_leaves_store_as_before(work: Path, ref: Reference) -> None:
    """Roll the completed run back: the store was empty before it, so no record and no file may
    remain (a file left on a deleted record is not in the snapshot: count the table)."""
    dest = execfix.store(work / "store.sqlite", files=ref.files)
    state = StateStore(work / "state.sqlite")
    try:
        (run,) = state.runs()
        rb = rollback_run(state, dest, run.id)
        assert rb.ok and rb.status == "rolled_back", (work.name, rb)
        assert dest.snapshot()["objects"] == {}, work.name
        left = dest._db.execute("SELECT key FROM attachments ORDER BY key").fetchall()
        assert not left, f"{len(left)} files left after the rollback, e.g. {left[:5]} ({work.name})"
    finally:
        dest.close()
        state.close()


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = scratch_root()
    build = tmp_path_factory.mktemp("crash-build")
    execfix.compile_module(build)
    module_py = build / "exec_build.py"
    big = root / "src5000"
    small = root / "src400"
    execfix.generate_source(big, 5000, seed=1)
    execfix.generate_source(small, 400, seed=2)
    yield root, module_py, big, small
    _REFS.clear()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def files_env(tmp_path_factory):
    root = scratch_root()
    build = tmp_path_factory.mktemp("crash-build-files")
    execfix.compile_module(build, files=True)
    module_py = build / "exec_build.py"
    src = root / "src400files"
    execfix.generate_source(src, 400, seed=3, files=True)
    yield root, module_py, src
    for m in FILE_MODES:
        _REFS.pop((str(src), m), None)
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
def test_crash_resume_5000_records(env):
    root, module_py, big, _ = env
    for mode, seeds in (("upsert", (101, 102)), ("no-upsert+faults", (103,))):
        ref = reference(root, module_py, big, mode)
        assert sum(c["extracted"] for c in ref.counts.values()) > 5000
        for seed in seeds:
            crash_seed(seed, ref, root, module_py)


@pytest.mark.slow
def test_crash_resume_many_seeds(env):
    root, module_py, _, small = env
    refs = {m: reference(root, module_py, small, m)
            for m in ("upsert", "no-upsert", "upsert+faults", "no-upsert+faults")}
    modes = sorted(refs)
    logs = {}
    for seed in range(49):
        ref = refs[modes[seed % len(modes)]]
        logs[seed] = crash_seed(seed, ref, root, module_py, use_exec=seed in (0, 1))
    kills = sum("killed" in e for lg in logs.values() for e in lg)
    print(f"{kills} kills over {len(logs)} seeds")
    assert kills >= 40, logs


@pytest.mark.parametrize("event", EVENTS)
def test_kill_at_each_hook_then_resume(env, event):
    """Every hook, deterministically, at its first and a middle occurrence."""
    root, module_py, _, small = env
    ref = reference(root, module_py, small, "no-upsert") if event == "reply" else \
        reference(root, module_py, small, "upsert")
    assert ref.events.get(event, 0) >= 2, ref.events
    for n in (1, ref.events[event] // 2):
        kill_once_then_resume(root, module_py, ref, f"{event}:{n}")


def kill_once_then_resume(root: Path, module_py: Path, ref: Reference, kill_at: str) -> None:
    work = root / f"hook-{kill_at.replace(':', '-')}"
    args = [str(module_py), str(ref.src), str(work), *ref.args]
    assert run_child(args, kill_at=kill_at) == "killed"
    assert run_child(args) == "done"
    res = json.loads((work / "result.json").read_text())
    verify(work, ref, res, [kill_at])


FILE_MODES = ("upsert+files", "no-upsert+faults+files")


@pytest.mark.slow
def test_crash_resume_with_files(files_env):
    """The files variant over a few seeds; the first two are also rolled back."""
    root, module_py, src = files_env
    refs = [reference(root, module_py, src, m) for m in FILE_MODES]
    kills = 0
    for seed in range(8):
        ref = refs[seed % len(refs)]
        log = crash_seed(500 + seed, ref, root, module_py)
        kills += sum("killed" in e for e in log)
        if seed < 2:
            rollback_leaves_store_as_before(seed_work(root, 500 + seed, ref), ref)
    assert kills >= 6


@pytest.mark.parametrize("event", FILE_EVENTS)
def test_kill_at_each_upload_hook_then_resume(files_env, event):
    """Killed before an upload is sent, and after the store committed it but before the reply
    (its file is in the store, the journal does not know): at the first, a middle and the last
    upload."""
    root, module_py, src = files_env
    ref = reference(root, module_py, src, "upsert+files")
    n_uploads = ref.events.get(event, 0)
    assert n_uploads > 100, ref.events
    for n in (1, n_uploads // 2, n_uploads):
        kill_once_then_resume(root, module_py, ref, f"{event}:{n}")
