#!/usr/bin/env python3
"""Synthetic, deliberately dirty sample exports for fmap's two source systems.

    python mappings/samples/generate.py --system aeronaclinic --format api --patients 60 --seed 42 \
        --out mappings/samples/aeronaclinic_api
    python mappings/samples/generate.py --materialize mappings/samples/aeronaclinic_api

Systems/formats (schemas in mappings/schemas/):
  aeronaclinic api  -> patients.json (streamed JSON list, nested arrays) + practitioners.json,
                       clinics.json, referrers.json, procedures.json, products.json, workflows.json, files/
  aeronaclinic csv  -> one CSV per object of aeronaclinic_csv.yaml + files/
  clinic_mgmt  csv  -> one CSV per object of clinic_mgmt_csv.yaml + files/

Properties: deterministic (byte-identical output for a seed: one ``random.Random`` and one seeded Faker,
no clock, no set/dict-order randomness); streaming (one patient in memory at a time, rows written as
they are made; reference lists are small and fixed-size); dirty on purpose at the rates in ``RATES``
(documented in README.md). ``FORCED`` makes each kind of dirt appear at least once from 60 patients on,
so even the small committed samples exercise every path.

Attachments over 25 MB: ``big_files="sparse"`` (the CLI default) writes them as sparse files
(``truncate``: full apparent size, no disk blocks). ``big_files="manifest"`` (used for the committed
samples) writes them not at all; it lists them in ``files/OVERSIZE_MANIFEST.json`` and in
``files/.gitignore``, and ``--materialize DIR`` creates them sparse on demand.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import random
import re
import sys
from contextlib import ExitStack
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml
from faker import Faker

HERE = Path(__file__).resolve().parent
SCHEMA_DIR = HERE.parent / "schemas"
EXPORT_DATE = dt.date(2025, 6, 30)  # the "today" of every sample: no clock, so output is reproducible
OVERSIZE_BYTES = 25 * 1024 * 1024
POOL_SIZE = 1000  # distinct Faker values per kind (names, streets...) drawn from
LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")

SYSTEMS = {("aeronaclinic", "api"): "aeronaclinic_api.yaml",
           ("aeronaclinic", "csv"): "aeronaclinic_csv.yaml",
           ("clinic_mgmt", "csv"): "clinic_mgmt_csv.yaml"}

# Approximate rates of each kind of dirt (per patient unless stated). README.md documents them.
RATES = {
    "duplicate": 0.02,          # next patient is a duplicate: same name + dob, new id, no email
    "missing_email": 0.08,
    "locum_practitioner": 0.04,  # per patient and per appointment: owner email with no CRM user
    "malformed_dob": 0.015,     # "31/02/2019", "2019-13-01", "", "N/A", "00/00/0000"
    "ddmm_dob": 0.03,           # clinic_mgmt only: dob typed DD/MM/YYYY in an MM/DD/YYYY export
    "name_noise": 0.05,         # "  jane ", "O'BRIEN", "SMITH", "jones"
    "long_note_5k": 0.03,       # per clinical note: body > 5,000 chars
    "long_note_32k": 0.004,     # per clinical note: body > 32,000 chars
    "oversize_file": 0.02,      # per document: > 25 MB (sparse)
    "dna": 0.06,                # per past appointment: DNA / no-show
    "unmapped_code": 0.005,     # per appointment/visit: status outside the schema's picklist
    "two_insurances": 0.10,
    "prospect": 0.09,           # status Prospect / Referral Inquiry, mostly without appointments
    "referral_source_noise": 0.15,  # clinic_mgmt: referral_source typed differently from the code
}
# Patient index (0-based) at which each kind of dirt is forced, so 60 patients show all of it.
FORCED = {"duplicate": 3, "missing_email": 5, "locum_practitioner": 7, "malformed_dob": 9,
          "ddmm_dob": 11, "name_noise": 13, "long_note_5k": 15, "long_note_32k": 17,
          "oversize_file": 19, "dna": 21, "unmapped_code": 23, "two_insurances": 25,
          "prospect": 27, "referral_source_noise": 29}
MALFORMED_DATES_UK = ["31/02/2019", "2019-13-01", "", "N/A", "00/00/0000", "29/02/2021"]
MALFORMED_DATES_US = ["02/31/2019", "2019-13-01", "", "N/A", "00/00/0000", "13/13/1985"]
# Enum codes emitted on purpose although the schema's picklist lacks them (mappings need a policy).
DELIBERATE_UNMAPPED = {
    ("aeronaclinic", "patients.appointments", "status"): ["Tentative", "Moved"],
    ("aeronaclinic_csv", "appointments", "status"): ["Tentative", "Moved"],
    ("clinic_mgmt", "visits", "status"): ["tentative", "left without being seen"],
}


def load_schema(system: str, fmt: str) -> dict:
    try:
        name = SYSTEMS[(system, fmt)]
    except KeyError:
        raise ValueError(f"unsupported system/format {system}/{fmt}; one of {sorted(SYSTEMS)}") from None
    return yaml.safe_load((SCHEMA_DIR / name).read_text())


def _columns(schema: dict) -> dict[str, list[str]]:
    return {o["api_name"]: [f["api_name"] for f in o["fields"]] for o in schema["objects"]}


# ---------------------------------------------------------------------------------------------- helpers
class Base:
    """Shared randomness, dirt decisions and value formats."""

    locale = "en_GB"

    def __init__(self, seed: int, n_patients: int):
        self.rng = random.Random(seed)
        self.fake = Faker(self.locale)
        self.fake.seed_instance(seed)
        self.n = n_patients
        self.i = 0  # index of the patient being generated
        self.counters: dict[str, int] = {}
        self._pools: dict[str, list[str]] = {}

    def next_id(self, kind: str, start: int = 1) -> int:
        v = self.counters.get(kind, start - 1) + 1
        self.counters[kind] = v
        return v

    def dirt(self, kind: str, scale: float = 1.0) -> bool:
        hit = self.rng.random() < RATES[kind] * scale
        if FORCED.get(kind) == self.i and (kind, self.i) not in self._forced_done:
            self._forced_done.add((kind, self.i))
            return True
        return hit

    _forced_done: set

    def fk(self, method: str) -> str:
        """A Faker value drawn from a fixed pool of POOL_SIZE values (built on first use): keeps the
        per-patient cost low and memory bounded however many patients are generated."""
        pool = self._pools.get(method)
        if pool is None:
            pool = self._pools[method] = [getattr(self.fake, method)() for _ in range(POOL_SIZE)]
        return pool[int(self.rng.random() * POOL_SIZE)]

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def ri(self, a: int, b: int) -> int:
        """randint(a, b), via random() (several times faster than randrange)."""
        return a + int(self.rng.random() * (b - a + 1))

    def rr(self, n: int) -> int:
        return int(self.rng.random() * n)

    def pick(self, seq):
        return seq[int(self.rng.random() * len(seq))]  # faster than randrange; deterministic all the same

    def wpick(self, pairs):
        total = sum(w for _, w in pairs)
        r = self.rng.random() * total
        for v, w in pairs:
            r -= w
            if r < 0:
                return v
        return pairs[-1][0]

    def date_between(self, a: dt.date, b: dt.date) -> dt.date:
        if b <= a:
            return a
        return a + dt.timedelta(days=self.rr((b - a).days + 1))

    def noisy_name(self, name: str) -> str:
        style = self.rr(5)
        if style == 0:
            return f"  {name.lower()} "
        if style == 1:
            return name.upper()
        if style == 2:
            return name.lower()
        if style == 3:
            return name + "  "
        return " " + name

    def email_for(self, first: str, last: str, domains: list[str]) -> str:
        local = re.sub(r"[^a-z.]", "", f"{first}.{last}".lower())
        style = self.rr(4)
        if style == 1:
            local = f"{local}{self.ri(1, 98)}"
        elif style == 2:
            local = f"{first[0]}{last}".lower().replace("'", "").replace(" ", "")
        email = f"{local}@{self.pick(domains)}"
        return email.upper() if self.chance(0.02) else email

    def html_note(self, phrases: list[str], long_kind: str | None) -> str:
        parts = [f"<p>{self.pick(phrases)}</p>"]
        if self.chance(0.6):
            parts.append("<ul>" + "".join(f"<li>{self.pick(phrases)}</li>"
                                          for _ in range(self.ri(1, 4))) + "</ul>")
        parts.append(f"<p>{self.pick(phrases)}<br>{self.pick(phrases)}</p>")
        body = "".join(parts)
        if long_kind:
            target = (self.ri(32_500, 40_000) if long_kind == "32k"
                      else self.ri(5_200, 9_000))
            chunks = [body]
            size = len(body)
            n = 1
            while size < target:
                c = (f"<p><b>Entry {n}</b> &ndash; {self.pick(phrases)} {self.pick(phrases)}"
                     f"<br>{self.pick(phrases)}</p>")
                chunks.append(c)
                size += len(c)
                n += 1
            body = "".join(chunks)
        return body


SMALL_FILE_HEADERS = {"application/pdf": b"%PDF-1.4\n", "image/jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
                      "application/dicom": b"\x00" * 128 + b"DICM", "image/png": b"\x89PNG\r\n\x1a\n",
                      "text/plain": b""}


class FileSink:
    """Writes document binaries under out/files/: small synthetic files, and over-limit ones sparse
    (or only listed, in manifest mode)."""

    def __init__(self, out: Path, big_files: str):
        self.out = out
        self.big_files = big_files
        self.oversize: list[dict] = []
        self._last_dir: Path | None = None  # files are bucketed by id // 1000 and ids ascend

    def _mkdir(self, d: Path) -> None:
        if d != self._last_dir:
            d.mkdir(parents=True, exist_ok=True)
            self._last_dir = d

    def write(self, rel: str, mime: str, size: int, ident: str) -> int:
        path = self.out / rel
        if size > OVERSIZE_BYTES:
            self.oversize.append({"path": rel, "size_bytes": size})
            if self.big_files == "sparse":
                self._mkdir(path.parent)
                with open(path, "wb") as f:
                    f.write(SMALL_FILE_HEADERS.get(mime, b""))
                    f.truncate(size)
            return size
        self._mkdir(path.parent)
        data = SMALL_FILE_HEADERS.get(mime, b"") + f"fmap synthetic sample document {ident}\n".encode()
        data += b"." * max(0, size - len(data))
        path.write_bytes(data)
        return len(data)

    def close(self) -> None:
        (self.out / "files").mkdir(parents=True, exist_ok=True)
        if self.big_files == "manifest":
            (self.out / "files" / "OVERSIZE_MANIFEST.json").write_text(
                json.dumps({"note": "Over-limit attachments not stored in git; create them (sparse) "
                                    "with: python mappings/samples/generate.py --materialize <this dir>",
                            "files": self.oversize}, indent=1) + "\n")
            (self.out / "files" / ".gitignore").write_text(
                "# materialised sparse >25 MB attachments (see OVERSIZE_MANIFEST.json)\n"
                + "".join("/" + Path(o["path"]).relative_to("files").as_posix() + "\n"
                          for o in self.oversize))


def materialize(out_dir: str | Path) -> list[Path]:
    """Create the over-limit attachments listed in files/OVERSIZE_MANIFEST.json as sparse files."""
    out = Path(out_dir)
    manifest = json.loads((out / "files" / "OVERSIZE_MANIFEST.json").read_text())
    made = []
    for entry in manifest["files"]:
        p = out / entry["path"]
        p.parent.mkdir(parents=True, exist_ok=True)
        with open(p, "wb") as f:
            f.truncate(entry["size_bytes"])
        made.append(p)
    return made


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:.2f}"
    return str(v)


class CsvSink:
    def __init__(self, out: Path, schema: dict, stack: ExitStack, bool_yes="true", bool_no="false"):
        self.writers = {}
        self.cols = _columns(schema)
        self.yes, self.no = bool_yes, bool_no
        for obj in schema["objects"]:
            fname = obj.get("vendor", {}).get("file", obj["api_name"] + ".csv")
            f = stack.enter_context(open(out / fname, "w", newline="", encoding="utf-8"))
            w = csv.writer(f, lineterminator="\r\n")
            w.writerow(self.cols[obj["api_name"]])
            self.writers[obj["api_name"]] = w

    def row(self, obj: str, rec: dict) -> None:
        cols = self.cols[obj]
        extra = set(rec) - set(cols)
        if extra:
            raise KeyError(f"{obj}: undeclared columns {sorted(extra)}")
        out = []
        for c in cols:
            v = rec.get(c)
            if isinstance(v, bool):
                out.append(self.yes if v else self.no)
            else:
                out.append(_cell(v))
        self.writers[obj].writerow(out)


# ------------------------------------------------------------------------------------- AeronaClinic
UK_DOMAINS = ["example.com", "example.co.uk", "example.org", "example.net", "mail.example.co.uk"]
PRACTICE_DOMAIN = "harbourdental.example"
UK_COUNTIES = ["West Yorkshire", "North Yorkshire", "Greater Manchester", "Lancashire", "Derbyshire",
               "Lincolnshire", "Kent", "Surrey", "Essex", "", "W. Yorks"]
IRISH_SCOTS = ["O'Brien", "O'Neill", "McDonald", "MacLeod", "D'Souza", "O'Connor", "McKenzie"]
PROCEDURES = [  # code, description, fee, category
    ("EX01", "Routine examination", 45.0, "Diagnostic"), ("EX02", "New patient examination", 65.0, "Diagnostic"),
    ("XR01", "Bitewing radiographs (pair)", 30.0, "Diagnostic"), ("XR02", "OPG panoramic radiograph", 55.0, "Diagnostic"),
    ("CB01", "CBCT scan", 180.0, "Diagnostic"), ("HY01", "Hygienist scale & polish", 70.0, "Preventive"),
    ("HY02", "Fluoride varnish", 20.0, "Preventive"), ("FS01", "Fissure sealant (per tooth)", 35.0, "Preventive"),
    ("RE11", "Composite filling - 1 surface", 95.0, "Restorative"),
    ("RE12", "Composite filling - 2 surfaces", 130.0, "Restorative"),
    ("RE21", "Amalgam filling", 80.0, "Restorative"), ("EN01", "Root canal - incisor", 350.0, "Endodontic"),
    ("EN03", "Root canal - molar", 595.0, "Endodontic"), ("PR01", "Crown - porcelain bonded", 545.0, "Prosthetic"),
    ("PR02", "Crown - e.max", 650.0, "Prosthetic"), ("PR05", "Bridge (per unit)", 520.0, "Prosthetic"),
    ("PR10", "Acrylic partial denture", 450.0, "Prosthetic"), ("SU01", "Simple extraction", 120.0, "Surgical"),
    ("SU02", "Surgical extraction", 240.0, "Surgical"), ("OR01", "Clear aligner course", 3200.0, "Orthodontic"),
    ("OR02", "Retainer", 180.0, "Orthodontic"), ("CO01", "Home whitening", 350.0, "Cosmetic"),
    ("CO02", "Composite bonding (per tooth)", 220.0, "Cosmetic"), ("IM01", "Implant placement", 2100.0, "Implant"),
    ("IM02", "Implant crown", 950.0, "Implant"), ("EM01", "Emergency appointment", 85.0, "Diagnostic"),
]
TOOTH_CATEGORIES = {"Restorative", "Endodontic", "Prosthetic", "Surgical", "Implant", "Cosmetic"}
FDI_TEETH = [f"{q}{t}" for q in (1, 2, 3, 4) for t in range(1, 9)]
PRODUCTS = [("TB-ELEC-01", "Electric toothbrush", 59.99), ("IDB-S", "Interdental brushes (small)", 4.5),
            ("IDB-M", "Interdental brushes (medium)", 4.5), ("FL-5000", "Duraphat 5000 toothpaste", 12.0),
            ("MW-CHX", "Chlorhexidine mouthwash 300ml", 6.5), ("WH-GEL", "Whitening gel refill", 25.0),
            ("MG-SPT", "Sports mouthguard", 95.0), ("RET-CASE", "Retainer case", 8.0),
            ("FLOSS", "Dental floss", 3.0), ("TB-HEAD", "Replacement brush heads (4)", 18.0)]
DENTAL_PHRASES = [
    "Pt attended for routine exam. MH checked &amp; updated &ndash; no changes.",
    "Caries noted UL6 distal &#8211; discussed options, pt wishes to proceed with composite.",
    "Generalised mild gingivitis; OHI given re interdental cleaning.",
    "BPE 1 1 2 / 1 1 2", "Pt reports sensitivity to cold LR7 &gt; 2 weeks.",
    "LA: 2.2ml Articaine 4% 1:100,000 buccal infiltration. Pt tolerated well.",
    "Bitewings taken, reported: no interproximal caries.", "Consent obtained verbally &amp; in writing.",
    "Pt anxious &ndash; given time &amp; reassurance.", "Calculus LL anterior, removed.",
    "Temporary crown cemented with TempBond; review 2/52.", "Advised pt re smoking cessation.",
    "Soft tissues NAD. Oral cancer screening &#10003;", "Recall 6/12 with hygienist.",
    "Pt's partner phoned to cancel &ndash; will rebook.", "Post-op instructions given verbally &amp; written.",
    "Referred to Dr O&#39;Neill for implant assessment.", "Fractured cusp UR5 &ndash; crown advised.",
]
ALLERGIES = ["Penicillin", "Latex", "NKDA", "Chlorhexidine", "Ibuprofen", "Codeine", "Peanuts"]
CONDITIONS = ["Asthma", "Type 2 diabetes", "Hypertension", "On warfarin", "Pregnant", "Epilepsy",
              "Bisphosphonates (oral)", "Heart murmur", "Anxiety"]
DRUGS = [("Amoxicillin", "500mg", "One capsule three times a day for 5 days"),
         ("Metronidazole", "400mg", "One tablet three times a day for 3 days. Avoid alcohol."),
         ("Ibuprofen", "400mg", "One tablet up to three times a day with food"),
         ("Chlorhexidine mouthwash", "0.2% 300ml", "Rinse 10ml twice daily for 1 week"),
         ("Duraphat toothpaste", "5000ppm 51g", "Brush twice daily, spit don't rinse"),
         ("Fluconazole", "50mg", "One capsule daily for 7 days")]
INSURERS = ["Denplan", "Bupa Dental", "Simplyhealth", "AXA Health", "Vitality Dental", "WPA"]


class AeronaGen(Base):
    locale = "en_GB"

    def __init__(self, seed: int, n_patients: int, files: FileSink):
        super().__init__(seed, n_patients)
        self._forced_done = set()
        self.files = files
        self._build_reference()

    # reference lists: small, fixed size, made before any patient
    def _build_reference(self) -> None:
        towns = ["Leeds", "Harrogate", "York", "Wakefield"]
        self.clinics = []
        for k, town in enumerate(towns, start=1):
            self.clinics.append({
                "id": k, "name": f"Harbour Dental {town}",
                "address": f"{self.fake.building_number()} {self.fake.street_name()}\n{town}",
                "postcode": self.fake.postcode(), "phone": self.uk_landline(),
                "email": f"{town.lower()}@{PRACTICE_DOMAIN}"})
        self.practitioners = []
        roles = ["Dentist", "Dentist", "Hygienist", "Therapist", "Nurse", "Receptionist"]
        pid = 0
        for c in self.clinics:
            for role in roles:
                pid += 1
                first, last = self.fake.first_name(), self.fake.last_name()
                self.practitioners.append({
                    "id": pid, "first_name": first, "last_name": last,
                    "email": re.sub(r"[^a-z.]", "", f"{first}.{last}".lower()) + "@" + PRACTICE_DOMAIN,
                    "role": role, "gdc_number": str(self.ri(50000, 299999)) if role != "Receptionist" else None,
                    "active": True, "clinic_id": c["id"]})
        self.practitioners[-2]["active"] = False  # a departed nurse
        self.practitioners[1]["active"] = False   # a departed dentist: still owns old records
        pid += 1
        self.practitioners.append({"id": pid, "first_name": "Locum", "last_name": "Dentist",
                                   "email": f"locum@{PRACTICE_DOMAIN}", "role": "Locum",
                                   "gdc_number": None, "active": True, "clinic_id": None})
        pid += 1
        self.practitioners.append({"id": pid, "first_name": "Agency", "last_name": "Hygienist",
                                   "email": f"locum.hygiene@{PRACTICE_DOMAIN}", "role": "Locum",
                                   "gdc_number": str(self.ri(50000, 299999)), "active": True,
                                   "clinic_id": None})
        self.locum_emails = [p["email"] for p in self.practitioners if p["role"] == "Locum"]
        self.clinicians = {c["id"]: [p["email"] for p in self.practitioners
                                     if p["clinic_id"] == c["id"] and p["role"] in ("Dentist", "Hygienist", "Therapist")]
                           for c in self.clinics}
        self.referrers = []
        for k in range(1, 13 + min(self.n // 100, 500)):
            rtype = self.wpick([("Dentist", 5), ("GP", 3), ("Company", 2), ("Self", 1)])
            name = {"Dentist": f"{self.fake.last_name()} Dental Practice",
                    "GP": f"{self.fake.street_name()} Medical Centre",
                    "Company": self.fake.company(), "Self": "Self referral"}[rtype]
            self.referrers.append({"id": k, "name": name, "type": rtype,
                                   "email": None if self.chance(0.3) else f"referrals{k}@{self.pick(UK_DOMAINS)}",
                                   "phone": self.uk_landline(), "address": self.fake.address()})
        self.procedures = [{"code": c, "description": d, "fee": f, "category": cat} for c, d, f, cat in PROCEDURES]
        self.products = [{"id": k, "sku": s, "name": nm, "price": p, "stock": self.ri(0, 120)}
                         for k, (s, nm, p) in enumerate(PRODUCTS, start=1)]
        self.workflows = [
            {"id": 1, "name": "Appointment confirmation", "trigger": "appointment_booked", "channel": "email",
             "offset_days": 0, "template": "Dear {first_name}, your appointment at {clinic} is booked for {start}.", "active": True},
            {"id": 2, "name": "48h reminder", "trigger": "appointment_upcoming", "channel": "sms",
             "offset_days": -2, "template": "Reminder: {clinic} {start}. Reply C to confirm.", "active": True},
            {"id": 3, "name": "Missed appointment", "trigger": "appointment_missed", "channel": "email",
             "offset_days": 1, "template": "We missed you today. A DNA fee may apply.", "active": True},
            {"id": 4, "name": "Recall due", "trigger": "recall_due", "channel": "letter",
             "offset_days": -14, "template": "Your check-up is due.", "active": True},
            {"id": 5, "name": "Invoice overdue", "trigger": "invoice_overdue", "channel": "email",
             "offset_days": 30, "template": "Invoice {number} is overdue.", "active": False},
            {"id": 6, "name": "Birthday greeting", "trigger": "birthday", "channel": "sms",
             "offset_days": 0, "template": "Happy birthday from Harbour Dental!", "active": True}]
        self.custom_fields = [
            {"id": 1, "clinic_id": None, "entity": "patient", "field_name": "Emergency contact", "field_type": "text", "options": None},
            {"id": 2, "clinic_id": None, "entity": "patient", "field_name": "Dental anxiety score", "field_type": "number", "options": None},
            {"id": 3, "clinic_id": 1, "entity": "patient", "field_name": "Finance agreement", "field_type": "yes_no", "options": None},
            {"id": 4, "clinic_id": 2, "entity": "patient", "field_name": "Membership plan", "field_type": "list",
             "options": "Essential|Plus|Family"},
            {"id": 5, "clinic_id": 3, "entity": "patient", "field_name": "Consent review date", "field_type": "date", "options": None}]

    def uk_mobile(self) -> str:
        d = f"7{self.ri(100, 999)}{self.ri(100000, 999999)}"
        return self.pick([f"0{d[:4]} {d[4:]}", f"+44 {d[:4]} {d[4:]}", f"0{d}", f"0044 {d[:4]} {d[4:7]} {d[7:]}",
                          f"+44 (0){d[:4]} {d[4:]}", f"+44{d}"])

    def uk_landline(self) -> str:
        area = self.pick(["113", "1423", "1904", "1924", "161", "20"])
        num = f"{self.ri(2000000, 7999999)}"
        return self.pick([f"0{area} {num[:3]} {num[3:]}", f"(0{area}) {num}", f"+44 {area} {num}", f"0{area}{num}"])

    def nhs_number(self) -> str:
        while True:
            d = [self.rr(10) for _ in range(9)]
            check = 11 - sum(x * (10 - k) for k, x in enumerate(d)) % 11
            if check == 11:
                check = 0
            if check != 10:
                s = "".join(map(str, d)) + str(check)
                return f"{s[:3]} {s[3:6]} {s[6:]}" if self.chance(0.2) else s

    def ts(self, day: dt.date, lo=8, hi=18) -> str:
        t = dt.datetime(day.year, day.month, day.day, self.ri(lo, hi - 1), self.rr(60),
                        self.rr(60), tzinfo=LONDON)
        return t.isoformat()

    def ukdate(self, d: dt.date | None) -> str | None:
        return None if d is None else d.strftime("%d/%m/%Y")

    # ------------------------------------------------------------------ patients
    def patients(self):
        prev = None
        pid = 10000
        for i in range(self.n):
            self.i = i
            pid += self.ri(1, 3)
            if prev is not None and prev.pop("_make_dup", False):
                p = self.duplicate_of(prev, pid)
            else:
                p = self.patient(pid)
            yield p
            prev = p

    def duplicate_of(self, orig: dict, pid: int) -> dict:
        """A second registration of the same person: same name and dob, no email, few children."""
        p = {k: (v if not isinstance(v, list) else []) for k, v in orig.items() if not k.startswith("_")}
        p.update(id=pid, email=None, email_opt_in=False, portal_enabled=False, nhs_number=None,
                 mobile=self.uk_mobile(), created_at=self.ts(EXPORT_DATE - dt.timedelta(days=self.ri(5, 400))))
        p["updated_at"] = p["created_at"]
        p["_custom"] = []
        return p

    def patient(self, pid: int) -> dict:
        gender = self.wpick([("F", 52), ("M", 45), ("U", 2), ("O", 1)])
        first = self.fk("first_name_female") if gender == "F" else self.fk("first_name_male") \
            if gender == "M" else self.fk("first_name")
        last = self.pick(IRISH_SCOTS) if self.chance(0.05) else self.fk("last_name")
        if FORCED["name_noise"] == self.i:
            last = "O'Brien"
        title = {"F": self.pick(["Mrs", "Miss", "Ms", "Dr"]), "M": self.pick(["Mr", "Mr", "Mr", "Dr"]),
                 "U": None, "O": "Mx"}[gender]
        dob = self.date_between(dt.date(1932, 1, 1), dt.date(2021, 12, 31))
        dob_s = self.ukdate(dob)
        if self.dirt("malformed_dob"):
            dob_s = self.pick(MALFORMED_DATES_UK) if FORCED["malformed_dob"] != self.i else "31/02/2019"
        email = None if self.dirt("missing_email") else self.email_for(first, last, UK_DOMAINS)
        if self.dirt("name_noise"):
            if self.chance(0.5) or FORCED["name_noise"] == self.i:
                first = self.noisy_name(first)
            last = last.upper() if "'" in last or self.chance(0.5) else self.noisy_name(last)  # O'BRIEN
        status = "Active"
        if self.dirt("prospect"):
            status = self.pick(["Prospect", "Referral Inquiry"]) if FORCED["prospect"] != self.i else "Referral Inquiry"
        else:
            status = self.wpick([("Active", 80), ("Inactive", 17), ("Deceased", 1.5)])
        clinic = self.wpick([(1, 40), (2, 25), (3, 25), (4, 10)])
        practitioner = self.pick(self.clinicians[clinic])
        if self.dirt("locum_practitioner"):
            practitioner = self.pick(self.locum_emails)
        referrer = None
        ref_source = self.pick(["WEB", "GOOGLE", "FACEBOOK", "WORD_OF_MOUTH", "WALK_IN", "NHS_111", "OTHER", None])
        if status == "Referral Inquiry" or self.chance(0.15):
            ref = self.pick(self.referrers)
            referrer = ref["id"]
            ref_source = {"Dentist": "DENTIST_REFERRAL", "GP": "GP_REFERRAL", "Company": "CORPORATE",
                          "Self": "WORD_OF_MOUTH"}[ref["type"]]
        created = self.date_between(dt.date(2012, 1, 1), EXPORT_DATE - dt.timedelta(days=3))
        if status in ("Prospect", "Referral Inquiry"):
            created = self.date_between(EXPORT_DATE - dt.timedelta(days=120), EXPORT_DATE - dt.timedelta(days=1))
        updated = self.date_between(created, EXPORT_DATE)
        p = {
            "id": pid, "title": title, "first_name": first, "last_name": last,
            "preferred_name": self.fk("first_name") if self.chance(0.05) else None,
            "dob": dob_s, "gender": gender, "email": email, "mobile": self.uk_mobile() if self.chance(0.9) else None,
            "home_phone": self.uk_landline() if self.chance(0.35) else None,
            "address_line1": self.fk("street_address").split("\n")[0],
            "address_line2": self.fk("secondary_address") if self.chance(0.15) else None,
            "town": self.fk("city"), "county": self.pick(UK_COUNTIES), "postcode": self.fk("postcode"),
            "country": self.pick(["United Kingdom", "United Kingdom", "United Kingdom", "UK", "GB", None]),
            "nhs_number": self.nhs_number() if self.chance(0.55) else None,
            "status": status, "clinic_id": clinic, "practitioner_email": practitioner,
            "referral_source": ref_source, "referring_practice_id": referrer,
            "allergies": ", ".join(sorted({self.pick(ALLERGIES) for _ in range(self.ri(1, 2))})) if self.chance(0.2) else None,
            "medical_conditions": "; ".join(sorted({self.pick(CONDITIONS) for _ in range(self.ri(1, 2))})) if self.chance(0.25) else None,
            "created_at": self.ts(created), "updated_at": self.ts(updated),
            "portal_enabled": email is not None and self.chance(0.4),
            "sms_opt_in": self.chance(0.7), "email_opt_in": email is not None and self.chance(0.6),
        }
        self.children(p, created, status, dob)
        if self.dirt("duplicate"):
            p["_make_dup"] = True
        return p

    def children(self, p: dict, created: dt.date, status: str, dob: dt.date) -> None:
        appts = []
        if status in ("Prospect", "Referral Inquiry"):
            n_appt = 1 if self.chance(0.15) and FORCED["prospect"] != self.i else 0
        elif status == "Inactive":
            n_appt = self.ri(0, 3)
        else:
            n_appt = self.ri(1, 6)
        force_dna = FORCED["dna"] == self.i
        force_unmapped = FORCED["unmapped_code"] == self.i
        for k in range(n_appt):
            day = self.date_between(created, EXPORT_DATE + dt.timedelta(days=60))
            if status == "Deceased":
                day = self.date_between(created, EXPORT_DATE - dt.timedelta(days=200))
            clinic = p["clinic_id"] if self.chance(0.9) else self.pick(self.clinics)["id"]
            start = dt.datetime(day.year, day.month, day.day, self.ri(8, 17), self.pick([0, 15, 30, 45]))
            all_day = self.chance(0.01)
            if all_day:
                start = start.replace(hour=0, minute=0)
                end = start.replace(hour=23, minute=59)
            else:
                end = start + dt.timedelta(minutes=self.pick([15, 20, 30, 45, 60, 90]))
            if day > EXPORT_DATE:
                st = self.wpick([("Booked", 60), ("Confirmed", 40)])
            elif self.dirt("dna") or (force_dna and k == 0):
                st = "DNA"
            else:
                st = self.wpick([("Complete", 85), ("Cancelled", 9), ("Rescheduled", 4), ("Arrived", 1)])
            if self.dirt("unmapped_code") or (force_unmapped and k == 0):
                st = self.pick(DELIBERATE_UNMAPPED[("aeronaclinic", "patients.appointments", "status")])
            prac = self.pick(self.clinicians[clinic])
            if self.dirt("locum_practitioner"):
                prac = self.pick(self.locum_emails)
            appts.append({
                "id": self.next_id("appointment", 500000), "start": start.strftime("%Y-%m-%d %H:%M"),
                "end": end.strftime("%Y-%m-%d %H:%M"), "clinic_id": clinic, "practitioner_email": prac,
                "type": self.wpick([("Examination", 35), ("Hygiene", 25), ("Treatment", 25), ("Emergency", 5),
                                    ("Consultation", 5), ("Review", 4), ("Orthodontic Adjustment", 1)]),
                "status": st, "all_day": all_day, "reminder_sent": st != "Booked" and self.chance(0.8),
                "notes": self.pick(["Pt running late", "Needs wheelchair access", "Prefers mornings",
                                    "Bring previous x-rays", "Call before 10am"]) if self.chance(0.2) else None})
        appts.sort(key=lambda a: a["start"])
        p["appointments"] = appts
        done = [a for a in appts if a["status"] == "Complete"]

        plans = []
        if appts and self.chance(0.35):
            for _ in range(1 if self.chance(0.85) else 2):
                pstatus = self.wpick([("Proposed", 25), ("Accepted", 20), ("In Progress", 20), ("Completed", 25),
                                      ("Declined", 10)])
                items = []
                for _ in range(self.ri(1, 5)):
                    proc = self.pick(PROCEDURES)
                    link = self.pick(done)["id"] if done and pstatus in ("In Progress", "Completed") else None
                    istat = ("Completed" if link else "Planned") if pstatus != "Declined" else "Cancelled"
                    items.append({"id": self.next_id("treatment", 700000),
                                  "tooth_number": self.pick(FDI_TEETH) if proc[3] in TOOTH_CATEGORIES else None,
                                  "procedure_code": proc[0], "description": proc[1], "fee": proc[2],
                                  "appointment_id": link, "status": istat})
                plan_day = dt.date.fromisoformat(appts[0]["start"][:10])
                plans.append({"id": self.next_id("plan", 300000),
                              "title": self.pick(["Restorative plan", "Hygiene course", "Crown UR6", "Implant LL6",
                                                  "Invisalign", "Whitening", "Treatment plan"]),
                              "status": pstatus, "created": self.ukdate(min(plan_day, EXPORT_DATE)),
                              "total_cost": round(sum(it["fee"] for it in items), 2), "items": items})
        p["treatment_plans"] = plans

        notes = []
        for a in done:
            if not self.chance(0.7):
                continue
            notes.append(self.note(a["start"], a["practitioner_email"], a["id"]))
        if self.chance(0.15):
            notes.append(self.note(self.ts(self.date_between(created, EXPORT_DATE))[:16].replace("T", " "),
                                   self.pick(self.clinicians[p["clinic_id"]]), None, "Telephone"))
        for kind, tag in (("long_note_32k", "32k"), ("long_note_5k", "5k")):
            if FORCED[kind] == self.i:
                notes.append(self.note(f"{EXPORT_DATE - dt.timedelta(days=30)} 10:00",
                                       self.pick(self.clinicians[p["clinic_id"]]), None, "Clinical", tag))
        p["clinical_notes"] = notes

        invoices = []
        for a in done:
            if not self.chance(0.6):
                continue
            invoices.append(self.invoice(a))
        p["invoices"] = invoices

        ins = []
        n_ins = 2 if self.dirt("two_insurances") else (1 if self.chance(0.25) else 0)
        for k in range(n_ins):
            frm = self.date_between(dt.date(2015, 1, 1), EXPORT_DATE)
            ins.append({"id": self.next_id("insurance", 900000), "provider": self.pick(INSURERS),
                        "policy_number": f"{self.pick(['DP', 'BU', 'SH', 'AX'])}{self.ri(1000000, 9999999)}",
                        "member_id": f"M{self.ri(100000, 999999)}", "plan_type": ["primary", "secondary"][k],
                        "valid_from": self.ukdate(frm),
                        "valid_to": None if self.chance(0.4) else self.ukdate(frm + dt.timedelta(days=365 * self.ri(1, 3)))})
        p["insurance"] = ins

        recalls = []
        if status == "Active" and self.chance(0.7):
            for rt in (["Exam"] + (["Hygiene"] if self.chance(0.5) else []) + (["Xray"] if self.chance(0.2) else [])):
                due = self.date_between(EXPORT_DATE - dt.timedelta(days=90), EXPORT_DATE + dt.timedelta(days=270))
                recalls.append({"id": self.next_id("recall", 100000), "due_date": self.ukdate(due), "recall_type": rt,
                                "status": ("Overdue" if self.chance(0.6) else "Sent") if due < EXPORT_DATE
                                else self.wpick([("Due", 60), ("Booked", 30), ("Cancelled", 10)])})
        p["recalls"] = recalls

        rx = []
        if done and self.chance(0.08):
            a = self.pick(done)
            drug, dose, instr = self.pick(DRUGS)
            rx.append({"id": self.next_id("rx", 40000), "date": self.ukdate(dt.date.fromisoformat(a["start"][:10])),
                       "drug": drug, "dose": dose, "instructions": instr, "prescriber_email": a["practitioner_email"]})
        p["prescriptions"] = rx

        docs = []
        n_docs = self.pick([0, 0, 0, 1, 1, 2]) if status not in ("Prospect", "Referral Inquiry") else 0
        if status == "Referral Inquiry" and p["referring_practice_id"]:
            n_docs = 1
        force_big = FORCED["oversize_file"] == self.i
        for k in range(max(n_docs, 1 if force_big else 0)):
            docs.append(self.document(p, created, big=self.dirt("oversize_file") or (force_big and k == 0),
                                      referral=status == "Referral Inquiry"))
        p["documents"] = docs

        cvals = []
        for cf in self.custom_fields:
            if cf["clinic_id"] not in (None, p["clinic_id"]) or not self.chance(0.5):
                continue
            v = {"text": lambda: self.fk("name") + " " + self.uk_mobile(),
                 "number": lambda: str(self.ri(0, 10)), "yes_no": lambda: self.pick(["Yes", "No", "yes", "Y"]),
                 "list": lambda: self.pick(cf["options"].split("|")),
                 "date": lambda: self.ukdate(self.date_between(created, EXPORT_DATE))}[cf["field_type"]]()
            cvals.append({"field_name": cf["field_name"], "value": v})
        p["_custom"] = cvals

    def note(self, when: str, author: str, appt_id, note_type=None, long_kind=None) -> dict:
        if long_kind is None:
            if self.dirt("long_note_32k"):
                long_kind = "32k"
            elif self.dirt("long_note_5k"):
                long_kind = "5k"
        day = dt.date.fromisoformat(when[:10])
        t = dt.datetime(day.year, day.month, day.day, int(when[11:13]), int(when[14:16]), tzinfo=LONDON)
        t += dt.timedelta(minutes=self.ri(5, 240))
        return {"id": self.next_id("note", 200000), "created_at": t.isoformat(), "author_email": author,
                "note_type": note_type or self.wpick([("Clinical", 70), ("Treatment", 20), ("Letter", 4),
                                                      ("Medical History", 5), ("Complaint", 1)]),
                "body": self.html_note(DENTAL_PHRASES, long_kind), "appointment_id": appt_id}

    def invoice(self, a: dict) -> dict:
        day = dt.date.fromisoformat(a["start"][:10])
        lines = []
        for _ in range(self.ri(1, 3)):
            proc = self.pick(PROCEDURES)
            lines.append({"id": self.next_id("line", 800000), "procedure_code": proc[0], "product_sku": None,
                          "description": proc[1], "quantity": 1, "unit_price": proc[2], "amount": proc[2]})
        if self.chance(0.1):
            sku, name, price = self.pick(PRODUCTS)
            q = self.ri(1, 3)
            lines.append({"id": self.next_id("line", 800000), "procedure_code": None, "product_sku": sku,
                          "description": name, "quantity": q, "unit_price": price, "amount": round(price * q, 2)})
        total = round(sum(li["amount"] for li in lines), 2)
        st = self.wpick([("Paid", 65), ("Part Paid", 10), ("Issued", 12), ("Draft", 5), ("Written Off", 3)])
        paid = {"Paid": total, "Part Paid": round(total * self.pick([0.25, 0.5, 0.6]), 2)}.get(st, 0.0)
        payments = []
        if paid:
            parts = [paid] if st == "Part Paid" or self.chance(0.8) else [round(paid / 2, 2), round(paid - round(paid / 2, 2), 2)]
            for amt in parts:
                payments.append({"id": self.next_id("payment", 600000),
                                 "date": self.ukdate(min(day + dt.timedelta(days=self.ri(0, 40)), EXPORT_DATE)),
                                 "amount": amt, "method": self.wpick([("Card", 70), ("Cash", 8), ("BACS", 8),
                                                                      ("Cheque", 2), ("Finance", 5), ("Insurance", 7)])})
        iid = self.next_id("invoice", 400000)
        return {"id": iid, "number": f"INV-{iid:07d}", "date": self.ukdate(day),
                "due_date": self.ukdate(day + dt.timedelta(days=30)) if self.chance(0.9) else None,
                "clinic_id": a["clinic_id"], "total": total, "paid": paid,
                "balance": 0.0 if st == "Written Off" else round(total - paid, 2), "status": st,
                "lines": lines, "payments": payments}

    def document(self, p: dict, created: dt.date, big: bool, referral: bool) -> dict:
        did = self.next_id("document", 1000)
        if big:
            cat, mime, name = "Scan", "application/dicom", f"CBCT_full_arch_{did}.dcm"
            size = self.ri(26, 60) * 1024 * 1024 + self.rr(1024 * 1024)
        else:
            cat, mime, ext = self.pick([("Xray", "image/jpeg", "jpg"), ("Consent", "application/pdf", "pdf"),
                                        ("Photo", "image/jpeg", "jpg"), ("Lab Report", "application/pdf", "pdf"),
                                        ("Correspondence", "application/pdf", "pdf"), ("Xray", "image/png", "png")])
            if referral:
                cat, mime, ext = "Referral Letter", "application/pdf", "pdf"
            name = f"{cat.lower().replace(' ', '_')}_{did}.{ext}"
            size = self.ri(200, 1500)
        rel = f"files/{p['id'] // 1000:04d}/{p['id']}_{name}"
        size = self.files.write(rel, mime, size, f"{p['id']}/{did}")
        return {"id": did, "file_name": name, "path": rel, "mime_type": mime, "size_bytes": size,
                "uploaded_at": self.ts(self.date_between(created, EXPORT_DATE)), "category": cat}


def _write_json_list(path: Path, items) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write("[")
        first = True
        for it in items:
            f.write("\n" if first else ",\n")
            f.write(json.dumps(it, ensure_ascii=False))
            first = False
        f.write("\n]\n")


def _aerona_api(out: Path, gen: AeronaGen) -> None:
    for name, items in (("practitioners", gen.practitioners), ("clinics", gen.clinics), ("referrers", gen.referrers),
                        ("procedures", gen.procedures), ("products", gen.products), ("workflows", gen.workflows)):
        _write_json_list(out / f"{name}.json", items)

    def strip(ps):
        for p in ps:
            p.pop("_custom", None)
            yield {k: v for k, v in p.items() if k != "_make_dup"}

    _write_json_list(out / "patients.json", strip(gen.patients()))


def _aerona_csv(out: Path, gen: AeronaGen, schema: dict) -> None:
    with ExitStack() as stack:
        sink = CsvSink(out, schema, stack)
        for name, items in (("practitioners", gen.practitioners), ("clinics", gen.clinics),
                            ("referrers", gen.referrers), ("procedures", gen.procedures),
                            ("products", gen.products), ("workflows", gen.workflows),
                            ("custom_fields", gen.custom_fields)):
            for it in items:
                sink.row(name, it)
        fid = 0
        for proc in gen.procedures:
            for sched, factor in (("Private", 1.0), ("Denplan", 0.9), ("Staff", 0.5)):
                fid += 1
                sink.row("fee_schedules", {"id": fid, "name": sched, "procedure_code": proc["code"],
                                           "fee": round(proc["fee"] * factor, 2)})
            if proc["category"] in ("Diagnostic", "Preventive", "Restorative", "Surgical"):
                fid += 1
                sink.row("fee_schedules", {"id": fid, "name": "NHS", "procedure_code": proc["code"],
                                           "fee": {"Diagnostic": 26.8, "Preventive": 26.8}.get(proc["category"], 73.5)})
        cv_id = 0
        for p in gen.patients():
            pid = p["id"]
            sink.row("patients", {k: v for k, v in p.items() if not isinstance(v, list) and not k.startswith("_")})
            for a in p["appointments"]:
                sink.row("appointments", {"patient_id": pid, **a})
            for tp in p["treatment_plans"]:
                sink.row("treatment_plans", {"patient_id": pid, **{k: v for k, v in tp.items() if k != "items"}})
                for it in tp["items"]:
                    sink.row("treatments", {"treatment_plan_id": tp["id"], "patient_id": pid, **it})
            for n in p["clinical_notes"]:
                sink.row("clinical_notes", {"patient_id": pid, **n})
            for inv in p["invoices"]:
                sink.row("invoices", {"patient_id": pid, **{k: v for k, v in inv.items() if k not in ("lines", "payments")}})
                for li in inv["lines"]:
                    sink.row("invoice_lines", {"invoice_id": inv["id"], **li})
                for pay in inv["payments"]:
                    sink.row("payments", {"invoice_id": inv["id"], "patient_id": pid, **pay})
            for obj in ("insurance", "recalls", "prescriptions", "documents"):
                for rec in p[obj]:
                    sink.row(obj, {"patient_id": pid, **rec})
            for cv in p["_custom"]:
                cv_id += 1
                sink.row("custom_field_values", {"id": cv_id, "patient_id": pid, **cv})


# ----------------------------------------------------------------------------- Clinic Management (US)
US_DOMAINS = ["example.com", "example.org", "example.net", "mail.example.com"]
CLINIC_DOMAIN = "riversidefm.example"
CPT = [("99203", "New patient visit, low complexity", 165.0), ("99204", "New patient visit, moderate", 250.0),
       ("99213", "Established patient visit, low", 110.0), ("99214", "Established patient visit, moderate", 165.0),
       ("99215", "Established patient visit, high", 225.0), ("99395", "Preventive visit 18-39", 210.0),
       ("99396", "Preventive visit 40-64", 230.0), ("90471", "Immunization administration", 28.0),
       ("93000", "Electrocardiogram, complete", 60.0), ("36415", "Routine venipuncture", 12.0),
       ("81002", "Urinalysis, non-automated", 9.0), ("99441", "Telephone E/M 5-10 min", 55.0),
       ("97110", "Therapeutic exercise, 15 min", 45.0), ("G0439", "Annual wellness visit, subsequent", 130.0)]
ICD10 = ["E11.9", "I10", "J06.9", "M54.50", "Z00.00", "E78.5", "F41.1", "R51.9", "K21.9", "J45.909"]
US_PHRASES = [
    "S: Pt presents with 3 days of sore throat &amp; low-grade fever.", "O: BP 128/82, HR 76, T 99.1&deg;F.",
    "A: Viral URI. P: supportive care, fluids, return if worse.", "Reviewed labs: A1c 7.2% &ndash; improved.",
    "Counseled on diet &amp; exercise; pt verbalized understanding.", "Refilled lisinopril 10 mg daily.",
    "Pt denies chest pain, SOB.", "Referred to PT 2x/week &times; 6 weeks.",
    "Patient&#39;s daughter present for visit.", "Flu vaccine administered L deltoid, lot #A12B3.",
    "Follow up in 3 months or sooner PRN.", "Discussed results &lt; normal range; repeat in 6 weeks.",
]
REF_CODES = [("DR_REFERRAL", "Physician referral", "Physician"), ("GOOGLE", "Google search", "Marketing"),
             ("YELP", "Yelp", "Marketing"), ("INS_DIRECTORY", "Insurance directory", "Insurance"),
             ("FRIEND", "Friend or family", "Patient"), ("WALKIN", "Walk-in", "Other"),
             ("HOSPITAL_ER", "Hospital ER follow-up", "Physician"), ("EMPLOYER", "Employer wellness program", "Other")]
REF_NOISE = {"DR_REFERRAL": ["Dr referral", "dr. referral", "DR REFERRAL"], "GOOGLE": ["google", "Google Ads", " GOOGLE"],
             "YELP": ["yelp"], "INS_DIRECTORY": ["Insurance", "ins directory"], "FRIEND": ["friend", "Friend/Family"],
             "WALKIN": ["walk-in", "Walk In"], "HOSPITAL_ER": ["ER", "hospital"], "EMPLOYER": ["employer"]}
PAYERS = [("Aetna", "60054"), ("Blue Cross Blue Shield", "00590"), ("Cigna", "62308"),
          ("UnitedHealthcare", "87726"), ("Medicare Part B", "MCRB"), ("Medicaid", "MCD01"), ("Humana", "61101")]


class ClinicMgmtGen(Base):
    locale = "en_US"

    def __init__(self, seed: int, n_patients: int, files: FileSink):
        super().__init__(seed, n_patients)
        self._forced_done = set()
        self.files = files
        self.locations = []
        for k, site in enumerate(["Main Street", "Westside", "North Campus"], start=1):
            self.locations.append({"location_id": f"L{k:02d}", "name": f"Riverside Family Medicine - {site}",
                                   "address": self.fake.street_address(), "city": self.fake.city(),
                                   "state": "NY", "zip": self.fake.zipcode(), "phone": self.us_phone(),
                                   "npi": str(self.ri(1000000000, 1999999999))})
        self.providers = []
        for loc in self.locations:
            for cred, spec in (("MD", "Family Medicine"), ("DO", "Internal Medicine"), ("NP", "Family Medicine"),
                               ("PA", "Urgent Care"), ("MA", None)):
                first, last = self.fake.first_name(), self.fake.last_name()
                self.providers.append({
                    "provider_id": f"PR{len(self.providers) + 1:03d}", "first_name": first, "last_name": last,
                    "credentials": cred, "specialty": spec, "npi": str(self.ri(1000000000, 1999999999)),
                    "email": re.sub(r"[^a-z.]", "", f"{first[0]}{last}".lower()) + "@" + CLINIC_DOMAIN,
                    "location_id": loc["location_id"], "active": True})
        self.providers[2]["active"] = False
        self.providers.append({"provider_id": "PR900", "first_name": "Per Diem", "last_name": "Provider",
                               "credentials": "MD", "specialty": "Family Medicine", "npi": None,
                               "email": f"locum@{CLINIC_DOMAIN}", "location_id": None, "active": True})
        self.clinicians = {loc["location_id"]: [p for p in self.providers if p["location_id"] == loc["location_id"]
                                                and p["credentials"] != "MA"] for loc in self.locations}
        self.locum = self.providers[-1]
        self.referral_sources = [{"code": c, "name": n, "category": cat,
                                  "contact_email": f"{c.lower()}@{self.pick(US_DOMAINS)}" if cat == "Physician" else None,
                                  "phone": self.us_phone() if cat == "Physician" else None} for c, n, cat in REF_CODES]
        self.programs = [
            {"program_id": "PG1", "name": "Diabetes Prevention Program", "description": "CDC-recognised 12-month lifestyle program",
             "location_id": None, "active": True, "start_date": "01/15/2021"},
            {"program_id": "PG2", "name": "Weight Management", "description": "Monthly coaching visits",
             "location_id": "L01", "active": True, "start_date": "03/01/2022"},
            {"program_id": "PG3", "name": "Smoking Cessation", "description": "8-week program with NRT",
             "location_id": "L02", "active": True, "start_date": "09/01/2020"},
            {"program_id": "PG4", "name": "Chronic Care Management", "description": "CCM for 2+ chronic conditions",
             "location_id": None, "active": False, "start_date": "06/01/2019"}]
        self.workflows = [
            {"workflow_id": "W1", "name": "Visit reminder 24h", "trigger": "visit_reminder", "action": "send_sms",
             "offset_days": -1, "template": "Reminder: your visit at {location} is tomorrow at {time}.", "active": True},
            {"workflow_id": "W2", "name": "No-show follow up", "trigger": "no_show", "action": "create_task",
             "offset_days": 0, "template": "Call patient to reschedule", "active": True},
            {"workflow_id": "W3", "name": "Denied claim review", "trigger": "claim_denied", "action": "create_task",
             "offset_days": 1, "template": "Review denial {denial_reason}", "active": True},
            {"workflow_id": "W4", "name": "Birthday email", "trigger": "birthday", "action": "send_email",
             "offset_days": 0, "template": "Happy birthday!", "active": False},
            {"workflow_id": "W5", "name": "Annual physical recall", "trigger": "recall_due", "action": "send_letter",
             "offset_days": -30, "template": "Time for your annual physical.", "active": True}]
        self.custom_fields = [
            {"field_id": "CF1", "location_id": "L01", "object": "patient", "label": "Preferred Pharmacy", "field_type": "text", "options": None},
            {"field_id": "CF2", "location_id": "L01", "object": "patient", "label": "Emergency Contact", "field_type": "text", "options": None},
            {"field_id": "CF3", "location_id": "L02", "object": "patient", "label": "Employer", "field_type": "text", "options": None},
            {"field_id": "CF4", "location_id": "L02", "object": "patient", "label": "Interpreter Needed", "field_type": "checkbox", "options": None},
            {"field_id": "CF5", "location_id": "L03", "object": "patient", "label": "Last Flu Shot", "field_type": "date", "options": None},
            {"field_id": "CF6", "location_id": "L03", "object": "patient", "label": "Risk Tier", "field_type": "dropdown", "options": "Low|Medium|High"}]

    def us_phone(self) -> str:
        a, b = self.ri(201, 989), self.ri(0, 99)
        return self.pick([f"({a}) 555-01{b:02d}", f"{a}.555.01{b:02d}", f"+1 {a} 555 01{b:02d}", f"{a}55501{b:02d}",
                          f"{a}-555-01{b:02d}", f"1-{a}-555-01{b:02d} x{self.ri(1, 99)}"])

    @staticmethod
    def usdt(t: dt.datetime) -> str:
        return t.strftime("%m/%d/%Y %I:%M %p")

    def rand_dt(self, a: dt.date, b: dt.date) -> dt.datetime:
        d = self.date_between(a, b)
        return dt.datetime(d.year, d.month, d.day, self.ri(8, 17), self.pick([0, 15, 30, 45]))

    def rows(self):
        """Yield (table, row) for every patient and its children, one patient at a time."""
        prev = None
        for i in range(self.n):
            self.i = i
            n = 1000 + i * 3 + self.ri(0, 2)
            pid = f"P{n:07d}"
            loc = self.pick(self.locations)["location_id"] if not prev or not prev.get("_make_dup") else prev["location_id"]
            if prev is not None and prev.get("_make_dup"):
                p = {k: v for k, v in prev.items() if not k.startswith("_")}
                p.update(patient_id=pid, mrn=f"MRN{n}", email=None, email_consent=False,
                         cell_phone=self.us_phone(), created_date=self.usdt(self.rand_dt(EXPORT_DATE - dt.timedelta(days=300), EXPORT_DATE)))
                p["modified_date"] = p["created_date"]
                prev = p
                yield "patients", p
                continue
            sex = self.wpick([("Female", 53), ("Male", 45), ("Other", 1), ("Unknown", 1)])
            first = self.fk("first_name_female") if sex == "Female" else self.fk("first_name_male")
            last = self.pick(IRISH_SCOTS) if self.chance(0.03) else self.fk("last_name")
            if FORCED["name_noise"] == self.i:
                last = "O'Brien"
            dob = self.date_between(dt.date(1930, 1, 1), dt.date(2022, 12, 31))
            dob_s = dob.strftime("%m/%d/%Y")
            if self.dirt("ddmm_dob") or self.i == FORCED["ddmm_dob"] + 20:
                if FORCED["ddmm_dob"] == self.i:  # 03/04/...: ambiguous, silently wrong if read as MM/DD
                    dob = dob.replace(day=3, month=4)
                elif FORCED["ddmm_dob"] + 20 == self.i:  # 25/04/...: detectably not MM/DD
                    dob = dob.replace(day=25, month=4)
                dob_s = dob.strftime("%d/%m/%Y")
            if self.dirt("malformed_dob"):
                dob_s = self.pick(MALFORMED_DATES_US) if FORCED["malformed_dob"] != self.i else "02/31/2019"
            email = None if self.dirt("missing_email") else self.email_for(first, last, US_DOMAINS)
            if self.dirt("name_noise"):
                first = self.noisy_name(first)
                last = last.upper() if "'" in last or self.chance(0.5) else self.noisy_name(last)  # O'BRIEN
            if self.dirt("prospect"):
                status = "Referral Inquiry" if FORCED["prospect"] == self.i else self.pick(["Prospect", "Referral Inquiry"])
            else:
                status = self.wpick([("Active", 80), ("Inactive", 20)])
            ref = self.pick(REF_CODES)[0] if self.chance(0.7) or status == "Referral Inquiry" else None
            if ref and self.dirt("referral_source_noise"):
                ref = self.pick(REF_NOISE[ref])
            prov = self.pick(self.clinicians[loc])
            if self.dirt("locum_practitioner"):
                prov = self.locum
            created = self.rand_dt(dt.date(2014, 1, 1), EXPORT_DATE - dt.timedelta(days=2))
            if status in ("Prospect", "Referral Inquiry"):
                created = self.rand_dt(EXPORT_DATE - dt.timedelta(days=90), EXPORT_DATE - dt.timedelta(days=1))
            modified = self.rand_dt(created.date(), EXPORT_DATE)
            p = {"patient_id": pid, "mrn": f"MRN{n}" if self.chance(0.95) else None, "first_name": first,
                 "middle_initial": self.fk("random_uppercase_letter") if self.chance(0.4) else None,
                 "last_name": last, "dob": dob_s, "sex": sex, "email": email,
                 "cell_phone": self.us_phone() if self.chance(0.85) else None,
                 "home_phone": self.us_phone() if self.chance(0.3) else None,
                 "address1": self.fk("street_address"), "address2": self.fk("secondary_address") if self.chance(0.2) else None,
                 "city": self.fk("city"), "state": self.pick(["NY", "NY", "NY", "NJ", "CT", "ny"]),
                 "zip": self.fk("zipcode") if self.chance(0.9) else self.fk("zipcode_plus4"),
                 "ssn_last4": f"{self.ri(0, 9999):04d}" if self.chance(0.6) else None,
                 "preferred_language": self.wpick([("English", 80), ("Spanish", 14), ("Chinese", 3), ("Vietnamese", 1), ("Other", 2)]),
                 "status": status, "location_id": loc, "primary_provider_id": prov["provider_id"], "referral_source": ref,
                 "sms_consent": self.chance(0.7), "email_consent": email is not None and self.chance(0.6),
                 "created_date": self.usdt(created), "modified_date": self.usdt(modified)}
            yield "patients", p
            yield from self.children(p, created.date(), prov)
            if self.dirt("duplicate"):
                p["_make_dup"] = True
            prev = p

    def children(self, p: dict, created: dt.date, prov: dict):
        pid, status = p["patient_id"], p["status"]
        # insurance first: claims point at it
        ins = []
        n_ins = 2 if self.dirt("two_insurances") else (1 if self.chance(0.65) else 0)
        for k in range(n_ins):
            payer, payer_id = self.pick(PAYERS)
            eff = self.date_between(dt.date(2016, 1, 1), EXPORT_DATE)
            row = {"insurance_id": f"I{self.next_id('ins', 50000)}", "patient_id": pid, "rank": ["primary", "secondary"][k],
                   "payer_name": payer, "payer_id": payer_id, "plan_name": self.pick(["PPO", "HMO", "EPO", "POS", "Medicare Advantage"]),
                   "member_id": f"{self.fk('random_uppercase_letter')}{self.ri(10000000, 99999999)}",
                   "group_number": str(self.ri(100000, 999999)) if self.chance(0.7) else None,
                   "subscriber_relationship": self.wpick([("self", 80), ("spouse", 10), ("child", 9), ("other", 1)]),
                   "effective_date": eff.strftime("%m/%d/%Y"),
                   "termination_date": None if self.chance(0.6) else (eff + dt.timedelta(days=365)).strftime("%m/%d/%Y")}
            ins.append(row)
            yield "insurance", row
        if status in ("Prospect", "Referral Inquiry"):
            n_visits = 1 if self.chance(0.15) and FORCED["prospect"] != self.i else 0
        else:
            n_visits = self.ri(1, 6) if status == "Active" else self.ri(0, 3)
        visits = []
        for k in range(n_visits):
            start = self.rand_dt(created, EXPORT_DATE + dt.timedelta(days=45))
            if start.date() > EXPORT_DATE:
                st = "scheduled"
            elif self.dirt("dna") or (FORCED["dna"] == self.i and k == 0):
                st = "no-show"
            else:
                st = self.wpick([("completed", 88), ("cancelled", 12)])
            if self.dirt("unmapped_code") or (FORCED["unmapped_code"] == self.i and k == 0):
                st = self.pick(DELIBERATE_UNMAPPED[("clinic_mgmt", "visits", "status")])
            vprov = self.locum if self.dirt("locum_practitioner") else (prov if self.chance(0.8) else self.pick(self.clinicians[p["location_id"]]))
            loc = p["location_id"] if self.chance(0.9) else self.pick(self.locations)["location_id"]
            v = {"visit_id": f"V{self.next_id('visit', 100000)}", "patient_id": pid, "provider_id": vprov["provider_id"],
                 "location_id": loc,
                 "visit_type": self.wpick([("Follow-up", 40), ("Annual Physical", 15), ("Sick Visit", 20), ("New Patient", 8),
                                           ("Telehealth", 12), ("Procedure", 5)]),
                 "status": st, "start_datetime": self.usdt(start),
                 "end_datetime": self.usdt(start + dt.timedelta(minutes=self.pick([15, 20, 30, 45, 60]))) if self.chance(0.95) else None,
                 "reason": self.pick(["Follow-up HTN", "Sore throat", "Annual physical", "Back pain", "Diabetes check",
                                      "Med refill", "Anxiety", None]),
                 "copay": self.pick([0.0, 20.0, 25.0, 30.0, 40.0, None])}
            visits.append(v)
        visits.sort(key=lambda v: dt.datetime.strptime(v["start_datetime"], "%m/%d/%Y %I:%M %p"))
        for v in visits:
            yield "visits", v
        done = [v for v in visits if v["status"] == "completed"]
        for v in done:
            vdate = dt.datetime.strptime(v["start_datetime"], "%m/%d/%Y %I:%M %p")
            claim_id = None
            services = [self.pick(CPT) for _ in range(self.ri(1, 3))]
            if ins:
                billed = round(sum(s[2] for s in services), 2)
                cst = self.wpick([("Paid", 70), ("Denied", 10), ("Submitted", 20)]) if vdate.date() < EXPORT_DATE - dt.timedelta(days=20) else "Submitted"
                paid = round(billed * self.pick([0.6, 0.7, 0.8]), 2) if cst == "Paid" else 0.0
                claim_id = f"C{self.next_id('claim', 700000)}"
                sub = vdate.date() + dt.timedelta(days=self.ri(1, 10))
                yield "claims", {"claim_id": claim_id, "claim_number": f"CLM{self.ri(10**9, 10**10 - 1)}", "patient_id": pid,
                                 "visit_id": v["visit_id"], "insurance_id": ins[0]["insurance_id"], "status": cst,
                                 "billed_amount": billed, "paid_amount": paid,
                                 "patient_balance": round(billed - paid, 2) if cst == "Paid" else (billed if cst == "Denied" else None),
                                 "service_date": vdate.strftime("%m/%d/%Y"), "submitted_date": sub.strftime("%m/%d/%Y"),
                                 "paid_date": (sub + dt.timedelta(days=self.ri(10, 40))).strftime("%m/%d/%Y") if cst == "Paid" else None,
                                 "denial_reason": self.pick(["CO-16 Missing information", "CO-50 Not medically necessary",
                                                             "CO-29 Timely filing", "PR-1 Deductible"]) if cst == "Denied" else None}
            for code, desc, fee in services:
                yield "services", {"service_id": f"S{self.next_id('service', 1)}", "visit_id": v["visit_id"], "patient_id": pid,
                                   "claim_id": claim_id, "cpt_code": code, "description": desc, "icd10_code": self.pick(ICD10),
                                   "units": 1, "charge": fee}
            if self.chance(0.8):
                yield "clinical_notes", self.note(pid, v, vdate)
        for kind, tag in (("long_note_32k", "32k"), ("long_note_5k", "5k")):
            if FORCED[kind] == self.i:
                yield "clinical_notes", self.note(pid, None, dt.datetime(2025, 5, 1, 9, 30), tag, prov)
        n_docs = self.pick([0, 0, 0, 1, 1, 2]) if status not in ("Prospect",) else 0
        force_big = FORCED["oversize_file"] == self.i
        for k in range(max(n_docs, 1 if force_big else 0)):
            big = self.dirt("oversize_file") or (force_big and k == 0)
            did = self.next_id("document", 5000)
            if big:
                cat, mime, name = "Imaging", "application/dicom", f"MRI_lumbar_{did}.dcm"
                size = self.ri(26, 80) * 1024 * 1024 + self.rr(1024 * 1024)
            else:
                cat, mime, ext = self.pick([("Lab Result", "application/pdf", "pdf"), ("Imaging", "image/jpeg", "jpg"),
                                            ("Consent", "application/pdf", "pdf"), ("Insurance Card", "image/png", "png"),
                                            ("Referral", "application/pdf", "pdf"), ("Correspondence", "text/plain", "txt")])
                name = f"{cat.lower().replace(' ', '_')}_{did}.{ext}"
                size = self.ri(200, 1500)
            rel = f"files/{int(pid[1:]) // 1000:04d}/{pid}_{name}"
            size = self.files.write(rel, mime, size, f"{pid}/{did}")
            yield "documents", {"document_id": f"D{did}", "patient_id": pid, "file_name": name, "file_path": rel,
                                "mime_type": mime, "size_bytes": size,
                                "uploaded_at": self.usdt(self.rand_dt(created, EXPORT_DATE)), "category": cat}
        if status == "Active" and self.chance(0.15):
            progs = [self.pick(self.programs)] if self.chance(0.8) else self.programs[:2]
            for prog in progs:
                yield "program_enrollments", {"enrollment_id": f"E{self.next_id('enrol', 1)}", "patient_id": pid,
                                              "program_id": prog["program_id"],
                                              "enrolled_date": self.date_between(created, EXPORT_DATE).strftime("%m/%d/%Y"),
                                              "status": self.wpick([("Active", 60), ("Completed", 25), ("Withdrawn", 15)])}
        for cf in self.custom_fields:
            if cf["location_id"] != p["location_id"] or not self.chance(0.6):
                continue
            val = {"text": lambda: self.fk("company") if cf["label"] == "Employer" else self.fk("name"),
                   "checkbox": lambda: self.pick(["Y", "N", "Yes", "1"]),
                   "date": lambda: self.date_between(created, EXPORT_DATE).strftime("%m/%d/%Y"),
                   "dropdown": lambda: self.pick(cf["options"].split("|"))}[cf["field_type"]]()
            yield "custom_field_values", {"value_id": self.next_id("cfv", 1), "field_id": cf["field_id"],
                                          "patient_id": pid, "value": val}

    def note(self, pid: str, v: dict | None, when: dt.datetime, long_kind=None, prov=None) -> dict:
        if long_kind is None:
            long_kind = "32k" if self.dirt("long_note_32k") else ("5k" if self.dirt("long_note_5k") else None)
        return {"note_id": f"N{self.next_id('note', 300000)}", "patient_id": pid, "visit_id": v["visit_id"] if v else None,
                "provider_id": v["provider_id"] if v else prov["provider_id"],
                "note_type": self.wpick([("SOAP", 70), ("Progress", 15), ("Phone", 10), ("Letter", 3), ("Intake", 2)]),
                "created_at": self.usdt(when + dt.timedelta(minutes=self.ri(10, 300))),
                "body_html": self.html_note(US_PHRASES, long_kind), "signed": self.chance(0.9)}


def _clinic_mgmt_csv(out: Path, gen: ClinicMgmtGen, schema: dict) -> None:
    with ExitStack() as stack:
        sink = CsvSink(out, schema, stack, bool_yes="Y", bool_no="N")
        for name, items in (("locations", gen.locations), ("providers", gen.providers),
                            ("referral_sources", gen.referral_sources), ("programs", gen.programs),
                            ("workflows", gen.workflows), ("custom_fields", gen.custom_fields)):
            for it in items:
                sink.row(name, it)
        for table, row in gen.rows():
            sink.row(table, {k: v for k, v in row.items() if not k.startswith("_")})


# ------------------------------------------------------------------------------------------ entry points
def generate(system: str, fmt: str, patients: int, seed: int, out_dir: str | Path,
             big_files: str = "sparse") -> Path:
    """Write one sample export into ``out_dir`` (created; existing files overwritten). Returns the dir."""
    if big_files not in ("sparse", "manifest"):
        raise ValueError("big_files must be 'sparse' or 'manifest'")
    schema = load_schema(system, fmt)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = FileSink(out, big_files)
    if system == "aeronaclinic":
        gen = AeronaGen(seed, patients, files)
        if fmt == "api":
            _aerona_api(out, gen)
        else:
            _aerona_csv(out, gen, schema)
    else:
        _clinic_mgmt_csv(out, ClinicMgmtGen(seed, patients, files), schema)
    files.close()
    return out


COMMITTED = {"aeronaclinic_api": ("aeronaclinic", "api"), "aeronaclinic_csv": ("aeronaclinic", "csv"),
             "clinic_mgmt_csv": ("clinic_mgmt", "csv")}
COMMITTED_PATIENTS, COMMITTED_SEED = 60, 42


def write_committed() -> list[Path]:
    """Regenerate the small samples committed next to this file (60 patients, seed 42, manifest mode)."""
    import shutil

    outs = []
    for folder, (system, fmt) in COMMITTED.items():
        out = HERE / folder
        shutil.rmtree(out, ignore_errors=True)
        outs.append(generate(system, fmt, COMMITTED_PATIENTS, COMMITTED_SEED, out, big_files="manifest"))
    return outs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--system", choices=["aeronaclinic", "clinic_mgmt"])
    ap.add_argument("--format", dest="fmt", choices=["api", "csv"])
    ap.add_argument("--patients", type=int, default=60)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out")
    ap.add_argument("--big-files", choices=["sparse", "manifest"], default="sparse",
                    help="over-25MB attachments: write sparse files (default) or only list them")
    ap.add_argument("--materialize", metavar="DIR",
                    help="create the attachments listed in DIR/files/OVERSIZE_MANIFEST.json (sparse) and exit")
    ap.add_argument("--write-committed", action="store_true",
                    help="regenerate mappings/samples/{aeronaclinic_api,aeronaclinic_csv,clinic_mgmt_csv} and exit")
    a = ap.parse_args(argv)
    if a.write_committed:
        for p in write_committed():
            print(p)
        return 0
    if a.materialize:
        for p in materialize(a.materialize):
            print(p)
        return 0
    if not (a.system and a.fmt and a.out):
        ap.error("--system, --format and --out are required")
    if (a.system, a.fmt) not in SYSTEMS:
        ap.error(f"{a.system} has no {a.fmt} format")
    generate(a.system, a.fmt, a.patients, a.seed, a.out, a.big_files)
    return 0


if __name__ == "__main__":
    sys.exit(main())
