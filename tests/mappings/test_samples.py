"""Source schemas (mappings/schemas/) and the sample-data generator (mappings/samples/generate.py).

Checks: every schema validates as a SystemSchema; generated data conforms to its schema (declared
fields only, picklist codes except the deliberate unmapped-code dirt, lookups resolve); output is
deterministic; every kind of documented dirt is present at N=300; the committed samples are exactly
what the generator produces for seed 42 / 60 patients; memory stays flat as N grows.
"""

from __future__ import annotations

import csv
import datetime as dt
import filecmp
import json
import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import yaml

from runtime.schema.model import SystemSchema
from tests.mappings.samplegen import GEN_PATH, gen
from tests.scratch import fast_dir, scratch_dir

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_DIR = ROOT / "mappings" / "schemas"
SAMPLES = ROOT / "mappings" / "samples"

# (system, format, schema file stem == committed sample folder name)
CASES = [("aeronaclinic", "api", "aeronaclinic_api"), ("aeronaclinic", "csv", "aeronaclinic_csv"),
         ("clinic_mgmt", "csv", "clinic_mgmt_csv")]
IDS = [c[2] for c in CASES]
csv.field_size_limit(10**8)


def load_schema(stem: str) -> SystemSchema:
    return SystemSchema.model_validate(yaml.safe_load((SCHEMA_DIR / f"{stem}.yaml").read_text()))


@pytest.fixture(scope="module")
def fast_tmp():
    """A scratch dir on tmpfs when there is one (thousands of small files), removed afterwards."""
    with scratch_dir("fmap-samples-") as d:
        yield d


@pytest.fixture
def scratch(fast_tmp, request):
    d = fast_tmp / re.sub(r"\W+", "_", request.node.name)
    d.mkdir()
    return d


@pytest.fixture(scope="module")
def generated300(fast_tmp):
    out = {}
    for system, fmt, stem in CASES:
        d = fast_tmp / f"n300_{stem}"
        gen.generate(system, fmt, 300, 42, d)
        out[stem] = d
    return out


def read_records(stem: str, d: Path) -> dict[str, list[dict]]:
    """All records of an export, by schema object name (nested API arrays flattened, each element
    tagged with ``_parent_key``)."""
    schema = load_schema(stem)
    recs: dict[str, list[dict]] = defaultdict(list)
    if stem.endswith("_api"):
        def walk(obj_name: str, rec: dict, parent_key=None) -> None:
            o = schema.object(obj_name)
            recs[obj_name].append({**rec, "_parent_key": parent_key})
            for f in o.fields:
                if f.type.value == "array" and isinstance(rec.get(f.api_name), list):
                    for child in rec[f.api_name]:
                        walk(f.item_object, child, rec.get(o.key))
        for o in schema.objects:
            if o.parent is None:
                for rec in json.loads((d / f"{o.api_name}.json").read_text()):
                    walk(o.api_name, rec)
    else:
        for o in schema.objects:
            with open(d / o.vendor["file"], newline="", encoding="utf-8") as f:
                r = csv.reader(f)
                header = next(r)
                assert header == o.field_names(), f"{o.api_name}: CSV header differs from schema"
                recs[o.api_name] = [dict(zip(header, row, strict=True)) for row in r]
    return recs


# schema stem -> the system name DELIBERATE_UNMAPPED uses (the schema's own ``system``)
UNMAPPED_SYSTEM = {"aeronaclinic_api": "aeronaclinic", "aeronaclinic_csv": "aeronaclinic_csv",
                   "clinic_mgmt_csv": "clinic_mgmt"}


def allowed_unmapped(stem: str, obj: str, field: str) -> set[str]:
    return set(gen.DELIBERATE_UNMAPPED.get((UNMAPPED_SYSTEM[stem], obj, field), []))


# ------------------------------------------------------------------------------------------ schemas
@pytest.mark.parametrize("stem", IDS)
def test_schema_validates_and_item_objects_exist(stem):
    s = load_schema(stem)
    assert s.kind == "source"
    names = set(s.object_names())
    assert len(names) == len(s.objects), "duplicate object names"
    for o in s.objects:
        assert o.key and o.field(o.key), f"{o.api_name}: key {o.key!r} is not a field"
        assert len(set(o.field_names())) == len(o.fields), f"{o.api_name}: duplicate fields"
        if o.parent:
            assert o.parent in names
        for f in o.fields:
            if f.type.value == "array":
                assert f.item_object in names, f"{o.api_name}.{f.api_name}: missing {f.item_object}"
                child = s.object(f.item_object)
                assert child.parent == o.api_name and f.item_object == f"{o.api_name}.{f.api_name}"
            if f.type.value == "picklist":
                assert f.picklist_values, f"{o.api_name}.{f.api_name}: picklist without values"
            for t in f.lookup_targets:
                assert t in names, f"{o.api_name}.{f.api_name}: lookup target {t} missing"


@pytest.mark.parametrize("stem", IDS)
def test_schema_passes_the_source_schema_loader_and_dates_declare_formats(stem):
    from runtime.schema.source import date_format, load_source_schema

    s = load_source_schema(SCHEMA_DIR / f"{stem}.yaml")
    for o in s.objects:
        for f in o.fields:
            if f.type.value in ("date", "datetime") and not f.api_name.endswith(("created_at", "updated_at", "uploaded_at")):
                assert date_format(f), f"{o.api_name}.{f.api_name}: no date_format"


def test_phi_fields_are_sensitive():
    for stem in IDS:
        s = load_schema(stem)
        p = s.object("patients")
        for name in ("first_name", "last_name", "dob", "email"):
            assert p.field(name).sensitive, f"{stem}.patients.{name}"


# -------------------------------------------------------------------------------------- conformance
def _check_value(stem, obj, f, v, is_csv: bool):
    t = f.type.value
    if v is None or (is_csv and v == ""):
        assert f.nullable, f"{obj}.{f.api_name} is not nullable"
        return
    if t == "picklist":
        assert v in f.picklist_values or v in allowed_unmapped(stem, obj, f.api_name), \
            f"{obj}.{f.api_name}: undeclared code {v!r}"
    if is_csv:
        assert isinstance(v, str)
        if t == "boolean":
            assert v in ("true", "false", "Y", "N"), f"{obj}.{f.api_name}: {v!r}"
        elif t == "integer":
            int(v)
        elif t in ("currency", "decimal"):
            float(v)
        return
    if t == "array":
        assert isinstance(v, list)
    elif t == "boolean":
        assert isinstance(v, bool), f"{obj}.{f.api_name}: {v!r}"
    elif t == "integer" or (t == "id" and isinstance(v, int)):
        assert isinstance(v, int) and not isinstance(v, bool)
    elif t == "currency":
        assert isinstance(v, (int, float)) and not isinstance(v, bool)
    elif t in ("text", "textarea", "email", "phone", "date", "datetime"):
        assert isinstance(v, str), f"{obj}.{f.api_name}: {v!r}"
    if f.max_length and t in ("text", "email", "phone", "picklist"):
        assert len(v) <= f.max_length, f"{obj}.{f.api_name}: {len(v)} > {f.max_length}: {v!r}"


@pytest.mark.parametrize("stem", IDS)
def test_generated_data_conforms_to_schema(stem, generated300):
    schema = load_schema(stem)
    recs = read_records(stem, generated300[stem])
    is_csv = not stem.endswith("_api")
    keys = {o.api_name: {str(r[o.key]) for r in recs[o.api_name]} for o in schema.objects}
    by_field = lambda obj, fld: {str(r[fld]) for r in recs[obj]}  # noqa: E731  (vendor lookup_by)
    for o in schema.objects:
        declared = {f.api_name: f for f in o.fields}
        for rec in recs[o.api_name]:
            extra = set(rec) - set(declared) - {"_parent_key"}
            assert not extra, f"{o.api_name}: undeclared fields {extra}"
            for f in o.fields:
                if not is_csv and not f.nullable:
                    assert f.api_name in rec, f"{o.api_name}.{f.api_name} missing"
                if f.api_name in rec:
                    _check_value(stem, o.api_name, f, rec[f.api_name], is_csv)
                    v = rec[f.api_name]
                    if f.type.value == "lookup" and v not in (None, ""):
                        target = f.lookup_targets[0]
                        known = by_field(target, f.vendor["lookup_by"]) if "lookup_by" in f.vendor else keys[target]
                        assert str(v) in known, f"{o.api_name}.{f.api_name}={v!r} not in {target}"
        ids = [str(r[o.key]) for r in recs[o.api_name]]
        assert len(ids) == len(set(ids)), f"{o.api_name}: duplicate keys"
    assert len(recs["patients"]) == 300
    # every document file referenced exists with the declared size
    docs = recs["patients.documents" if not is_csv else "documents"]
    assert docs
    for doc in docs:
        rel = doc.get("path") or doc.get("file_path")
        assert (generated300[stem] / rel).stat().st_size == int(doc["size_bytes"])


# -------------------------------------------------------------------------------------------- dirt
def _bad_date(v: str, fmt: str) -> bool:
    try:
        dt.datetime.strptime(v, fmt)
        return False
    except ValueError:
        return True


def _norm(s: str) -> str:
    return s.strip().lower()


@pytest.mark.parametrize("stem", IDS)
def test_each_kind_of_dirt_is_present(stem, generated300):
    d = generated300[stem]
    recs = read_records(stem, d)
    api = stem.endswith("_api")
    us = stem == "clinic_mgmt_csv"
    P = recs["patients"]
    pk = "patient_id" if us else "id"

    def blank(v):
        return v in (None, "")

    # duplicates: same name + dob, different id, one of them without an email
    groups = defaultdict(list)
    for p in P:
        if not blank(p["dob"]):
            groups[(_norm(p["first_name"]), _norm(p["last_name"]), p["dob"])].append(p)
    dups = [g for g in groups.values() if len({str(p[pk]) for p in g}) > 1]
    assert dups and any(any(blank(p["email"]) for p in g) for g in dups)
    missing = sum(blank(p["email"]) for p in P)
    assert 0.03 * len(P) < missing < 0.2 * len(P)

    # malformed dates; ambiguous DD/MM vs MM/DD in the US export
    fmt = "%m/%d/%Y" if us else "%d/%m/%Y"
    bad = [p["dob"] for p in P if blank(p["dob"]) or (_bad_date(p["dob"], fmt)
                                                     and (not us or _bad_date(p["dob"], "%d/%m/%Y")))]
    assert bad and set(bad) <= set(gen.MALFORMED_DATES_US if us else gen.MALFORMED_DATES_UK)
    if us:
        parts = [p["dob"].split("/") for p in P if re.fullmatch(r"\d\d/\d\d/\d{4}", p["dob"] or "")]
        assert any(int(a) > 12 and int(a) <= 31 and int(b) <= 12 for a, b, _ in parts), "no DD/MM-typed dob"
        assert any(int(a) <= 12 and int(b) <= 12 and a != b for a, b, _ in parts), "no ambiguous dob"

    # name noise: stray whitespace, shouting, O'BRIEN
    names = [p["first_name"] for p in P] + [p["last_name"] for p in P]
    assert any(n != n.strip() for n in names)
    assert any(n.isupper() and len(n) > 2 for n in names)

    # phone numbers in mixed formats
    phone_field = "cell_phone" if us else "mobile"
    shapes = {re.sub(r"\d", "9", p[phone_field]) for p in P if not blank(p[phone_field])}
    assert len(shapes) >= 4, shapes

    # >= 3 clinics, patients spread over them
    loc_field = "location_id" if us else "clinic_id"
    clinics = recs["locations" if us else "clinics"]
    assert len(clinics) >= 3 and len({str(p[loc_field]) for p in P}) >= 3

    # appointments: DNA / no-show, deliberate unmapped codes
    appt_obj = "visits" if us else ("patients.appointments" if api else "appointments")
    statuses = Counter(a["status"] for a in recs[appt_obj])
    assert statuses["no-show" if us else "DNA"] > 0
    unmapped = allowed_unmapped(stem, appt_obj, "status")
    assert unmapped & set(statuses), "no deliberate unmapped status code"

    # practitioner emails with no CRM user (locums)
    if us:
        locum_ids = {p["provider_id"] for p in recs["providers"] if p["email"].startswith("locum")}
        used = {p["primary_provider_id"] for p in P} | {v["provider_id"] for v in recs["visits"]}
    else:
        locum_ids = {p["email"] for p in recs["practitioners"] if p["role"] == "Locum"}
        used = {p["practitioner_email"] for p in P} | {a["practitioner_email"] for a in recs[appt_obj]}
    assert locum_ids & used

    # referral-only prospects with no appointment
    appt_parent = (lambda a: a["_parent_key"]) if api else (lambda a: a["patient_id"])
    with_appt = {str(appt_parent(a)) for a in recs[appt_obj]}
    prospects = [p for p in P if p["status"] in ("Prospect", "Referral Inquiry") and str(p[pk]) not in with_appt]
    assert any(p["status"] == "Referral Inquiry" for p in prospects)

    # two insurance plans
    ins_obj = "patients.insurance" if api else "insurance"
    per = Counter(str(appt_parent(i)) for i in recs[ins_obj])
    assert any(n == 2 for n in per.values())

    # notes: HTML, > 5,000 and > 32,000 characters
    note_obj = "patients.clinical_notes" if api else "clinical_notes"
    body = "body_html" if us else "body"
    bodies = [n[body] for n in recs[note_obj]]
    joined = "".join(bodies[:200])
    for tag in ("<p>", "<br>", "<ul><li>", "&amp;"):
        assert tag in joined
    assert any(len(b) > 32_000 for b in bodies)
    assert sum(len(b) > 5_000 for b in bodies) >= 2

    # attachments over 25 MB, written sparse
    doc_obj = "patients.documents" if api else "documents"
    big = [x for x in recs[doc_obj] if int(x["size_bytes"]) > 25 * 1024 * 1024]
    assert big
    for x in big:
        st = (d / (x.get("path") or x.get("file_path"))).stat()
        assert st.st_size == int(x["size_bytes"]) and st.st_blocks * 512 < 1024 * 1024, "not sparse"

    if us:  # free-text-ish referral sources that are not exactly a code
        codes = {r["code"] for r in recs["referral_sources"]}
        assert any(p["referral_source"] and p["referral_source"] not in codes for p in P)
        assert recs["program_enrollments"]


# ---------------------------------------------------------------------------- determinism, samples
def _tree(d: Path) -> list[str]:
    return sorted(p.relative_to(d).as_posix() for p in d.rglob("*") if p.is_file())


def _assert_same_tree(a: Path, b: Path) -> None:
    ta, tb = _tree(a), _tree(b)
    assert ta == tb, f"file lists differ: {sorted(set(ta) ^ set(tb))[:10]}"
    diff = [p for p in ta if not filecmp.cmp(a / p, b / p, shallow=False)]
    assert not diff, f"files differ: {diff[:10]}"


@pytest.mark.parametrize("system,fmt,stem", CASES, ids=IDS)
def test_deterministic_byte_identical(system, fmt, stem, generated300, scratch):
    # a second in-process run; test_committed_sample_matches_generator adds a cross-process,
    # cross-commit check at N=60
    gen.generate(system, fmt, 300, 42, scratch / "again")
    _assert_same_tree(generated300[stem], scratch / "again")
    gen.generate(system, fmt, 40, 43, scratch / "other_seed")
    assert (scratch / "other_seed" / ("patients.json" if fmt == "api" else "patients.csv")).read_bytes() != \
        (generated300[stem] / ("patients.json" if fmt == "api" else "patients.csv")).read_bytes()


@pytest.mark.parametrize("system,fmt,stem", CASES, ids=IDS)
def test_committed_sample_matches_generator(system, fmt, stem, scratch):
    tmp_path = scratch
    committed = SAMPLES / stem
    assert committed.is_dir(), f"{committed} missing: regenerate (see mappings/samples/README.md)"
    gen.generate(system, fmt, 60, 42, tmp_path / stem, big_files="manifest")
    # materialised over-limit files are git-ignored and not part of the comparison
    manifest = json.loads((committed / "files" / "OVERSIZE_MANIFEST.json").read_text())
    ta = [t for t in _tree(committed) if t not in {e["path"] for e in manifest["files"]}]
    assert ta == _tree(tmp_path / stem)
    diff = [p for p in ta if not filecmp.cmp(committed / p, tmp_path / stem / p, shallow=False)]
    assert not diff, f"committed sample drifted from generator: {diff[:10]}"
    assert manifest["files"], "the committed sample should list at least one over-limit attachment"


def test_committed_samples_are_small():
    total = sum(p.stat().st_size for stem in IDS for p in (SAMPLES / stem).rglob("*")
                if p.is_file() and "OVERSIZE" not in p.name and p.stat().st_size < 25 * 1024 * 1024)
    assert total < 1_500_000, total


def test_cli_and_materialize(scratch):
    tmp_path = scratch
    out = tmp_path / "cli"
    subprocess.run([sys.executable, str(GEN_PATH), "--system", "clinic_mgmt", "--format", "csv", "--patients",
                    "30", "--seed", "5", "--out", str(out), "--big-files", "manifest"], check=True)
    gen.generate("clinic_mgmt", "csv", 30, 5, tmp_path / "api_call", big_files="manifest")
    _assert_same_tree(out, tmp_path / "api_call")
    made = gen.materialize(out)
    assert made and all(p.stat().st_size > 25 * 1024 * 1024 and p.stat().st_blocks * 512 < 1024 * 1024
                        for p in made)
    ignored = (out / "files" / ".gitignore").read_text()
    assert all("/" + p.relative_to(out / "files").as_posix() in ignored for p in made)
    r = subprocess.run([sys.executable, str(GEN_PATH), "--system", "clinic_mgmt", "--format", "api",
                        "--out", str(tmp_path / "x")], capture_output=True)
    assert r.returncode == 2


# ------------------------------------------------------------------------------------------- memory
_MEM_SCRIPT = """
import importlib.util, resource, sys, tempfile
spec = importlib.util.spec_from_file_location("g", sys.argv[1]); g = importlib.util.module_from_spec(spec)
spec.loader.exec_module(g)
with tempfile.TemporaryDirectory(dir=sys.argv[3] or None) as d:
    g.generate("aeronaclinic", "api", int(sys.argv[2]), 7, d)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def test_memory_flat_when_streaming():
    """Peak RSS of a fresh process for 2,000 vs 20,000 patients (nested JSON, the riskiest format).

    tracemalloc would be the finer tool but slows this allocation-heavy generator about tenfold
    (~90 s for 20,000 patients); a process's peak RSS over a 10x larger run catches any
    per-patient accumulation just as surely.
    """
    procs = [subprocess.Popen([sys.executable, "-c", _MEM_SCRIPT, str(GEN_PATH), str(n), fast_dir() or ""],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for n in (2_000, 20_000)]  # run side by side: each reports its own peak
    peaks = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        peaks.append(int(out.strip()))  # KiB on Linux
    small, large = peaks
    assert large < small * 1.3 and large - small < 16 * 1024, f"peak RSS {small} KiB -> {large} KiB"


@pytest.mark.parametrize("stem", IDS)
def test_committed_samples_show_every_kind_of_dirt(stem, scratch):
    """FORCED in the generator puts each kind of dirt into the first 60 patients, so the small
    committed samples exercise every path too (over-limit files materialised, sparse, in a copy)."""
    import shutil

    d = scratch / stem
    shutil.copytree(SAMPLES / stem, d)
    gen.materialize(d)
    test_each_kind_of_dirt_is_present(stem, {stem: d})
