"""The baselines of ``bench_transform.py``: the synthetic patients and the same patient ->
Lead/Contact mapping written by hand, with glom and in JSONata (jsonata-python).

Each variant returns ``(target, key, record)`` for one patient, like the generated module's step
functions do; ``bench_transform.py`` asserts they all equal ``hand_written``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date
from typing import Any

from runtime import Owner, Ref
from runtime.functions import title

__all__ = ["make_records", "hand_written", "build_glom", "build_jsonata", "JSONATA", "GENDER",
           "LEAD_SOURCE", "LEAD_STATUSES"]

# ------------------------------------------------------------------------------------ data

_FIRST = ["john", "MARY", "  anne-marie ", "o'neil", "peter ", "siobhan", "ahmed", "li", "zoë",
          "jean-luc", "ewan", "priya"]
_LAST = ["smith", "o'brien", "mcdonald", "van der berg", "JONES", "  patel", "nguyen ", "MacLeod",
         "davies", "de la cruz", "kowalski"]
_STATUS = ["Active", "Active", "Active", "Prospect", "Referral Inquiry", "Inactive", "Deceased"]
_SOURCE = ["WEB", "REF", "GP", "WALK", "TV", None, ""]
_GENDER = ["M", "F", "M", "F", "U", "", None]
_CITY = ["London ", "Leeds", " Bristol", "Cardiff", "Glasgow"]


def make_records(n: int, seed: int = 20240131) -> list[dict[str, Any]]:
    """``n`` synthetic AeronaClinic patients (21 fields; some null, blank or absent)."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        first = rnd.choice(_FIRST)
        last = rnd.choice(_LAST)
        rec: dict[str, Any] = {
            "id": f"P{i:07d}",
            "title": rnd.choice(["Mr", "Mrs", "Ms", "Dr", None]),
            "first_name": first,
            "last_name": last,
            "email": (f"{first.strip()}.{last.strip()}{i}@Example.COM".replace(" ", "")
                      if rnd.random() < 0.9 else None),
            "dob": f"{rnd.randint(1, 28):02d}/{rnd.randint(1, 12):02d}/{rnd.randint(1930, 2020)}",
            "gender": rnd.choice(_GENDER),
            "source": rnd.choice(_SOURCE),
            "mobile": f"07{rnd.randint(100000000, 999999999)}" if rnd.random() < 0.7 else "",
            "home_phone": f"01{rnd.randint(100000000, 999999999)}",
            "address1": f"{rnd.randint(1, 200)} High Street",
            "address2": rnd.choice(["Flat 2", "", None]),
            "city": rnd.choice(_CITY),
            "postcode": f"ab{rnd.randint(1, 99)} {rnd.randint(1, 9)}cd",
            "clinic_id": rnd.randint(1, 40),
            "practitioner_email": f"dr{rnd.randint(1, 25)}@clinic.example",
            "status": rnd.choice(_STATUS),
            "nhs_number": str(rnd.randint(10**9, 10**10 - 1)),
            "created_at": "2021-03-04T10:00:00Z",
            "appointments": [{"id": f"A{i}-{j}", "status": "Complete"}
                             for j in range(rnd.choice([0, 0, 1, 2, 3]))],
        }
        if rnd.random() < 0.5:
            rec["notes"] = "  Allergic to penicillin. "
        out.append(rec)
    return out


# ------------------------------------------------------------------------------------ (a) by hand

GENDER = {"M": "Male", "F": "Female"}
LEAD_SOURCE = {"WEB": "Website", "REF": "Referral", "GP": "GP Referral", "WALK": "Walk-in"}
LEAD_STATUSES = frozenset({"Prospect", "Referral Inquiry"})
ACCOUNTS = ("Accounts",)


def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


def hand_written(rec: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """The mapping as a developer would write it for this export (names need the same name-aware
    title case as fmap's ``title``: "o'brien" -> "O'Brien", "mcdonald" -> "McDonald")."""
    first = rec["first_name"]
    last = rec["last_name"]
    email = rec["email"]
    source = rec["source"]
    mobile = rec["mobile"]
    key = rec["id"].strip()
    if rec["status"] in LEAD_STATUSES and not rec["appointments"]:
        return "Leads", key, {
            "First_Name": title(first.strip()) if first is not None else None,
            "Last_Name": title(last.strip()) if last is not None else None,
            "Email": email.lower() if email is not None else None,
            "Lead_Source": LEAD_SOURCE.get(source, "Other") if source is not None else None,
            "Phone": rec["home_phone"] if _blank(mobile) else mobile,
            "Lead_Status": rec["status"],
            "Owner": Owner(rec["practitioner_email"]),
        }
    dob = rec["dob"]
    gender = rec["gender"]
    city = rec["city"]
    postcode = rec["postcode"]
    clinic = rec["clinic_id"]
    out = {
        "First_Name": title(first.strip()) if first is not None else None,
        "Last_Name": title(last.strip()) if last is not None else None,
        "Email": email.lower() if email is not None else None,
        "Date_of_Birth": date(int(dob[6:10]), int(dob[3:5]), int(dob[0:2])) if dob else None,
        "Gender": GENDER.get(gender, "Unknown") if gender is not None else None,
        "Lead_Source": LEAD_SOURCE.get(source, "Other") if source is not None else None,
        "Mobile": rec["home_phone"] if _blank(mobile) else mobile,
        "Mailing_Street": f"{rec['address1'] or ''}, {rec['address2'] or ''}",
        "Mailing_City": city.strip() if city is not None else None,
        "Mailing_Zip": postcode.upper() if postcode is not None else None,
        "Account_Name": Ref(ACCOUNTS, str(clinic) if clinic is not None else None),
        "Owner": Owner(rec["practitioner_email"]),
        "Source_System_ID": rec["id"],
        "Patient_Status": rec["status"],
    }
    if "notes" in rec:
        notes = rec["notes"]
        out["Description"] = notes.strip() if notes is not None else None
    return "Contacts", key, out


# ------------------------------------------------------------------------------------ (c) glom


def build_glom() -> Callable[[dict], tuple] | None:
    try:
        from glom import Coalesce, glom
    except ImportError:
        return None

    def opt(f):
        return lambda v: f(v) if v is not None else None

    name = opt(lambda v: title(v.strip()))
    lower = opt(str.lower)
    lead_source = opt(lambda v: LEAD_SOURCE.get(v, "Other"))
    def phone(r):
        return (r["home_phone"] if _blank(r["mobile"]) else r["mobile"])
    lead_spec = {
        "First_Name": ("first_name", name),
        "Last_Name": ("last_name", name),
        "Email": ("email", lower),
        "Lead_Source": ("source", lead_source),
        "Phone": phone,
        "Lead_Status": "status",
        "Owner": ("practitioner_email", Owner),
    }
    contact_spec = {
        "First_Name": ("first_name", name),
        "Last_Name": ("last_name", name),
        "Email": ("email", lower),
        "Date_of_Birth": ("dob", opt(lambda d: date(int(d[6:10]), int(d[3:5]), int(d[0:2])))),
        "Gender": ("gender", opt(lambda g: GENDER.get(g, "Unknown"))),
        "Lead_Source": ("source", lead_source),
        "Mobile": phone,
        "Mailing_Street": lambda r: f"{r['address1'] or ''}, {r['address2'] or ''}",
        "Mailing_City": ("city", opt(str.strip)),
        "Mailing_Zip": ("postcode", opt(str.upper)),
        "Account_Name": ("clinic_id", lambda c: Ref(ACCOUNTS, str(c) if c is not None else None)),
        "Owner": ("practitioner_email", Owner),
        "Source_System_ID": "id",
        "Patient_Status": "status",
    }
    notes_spec = {"Description": Coalesce(("notes", opt(str.strip)), default=None)}

    def run(rec: dict) -> tuple:
        key = glom(rec, ("id", str.strip))
        if glom(rec, "status") in LEAD_STATUSES and not glom(rec, "appointments"):
            return "Leads", key, glom(rec, lead_spec)
        out = glom(rec, contact_spec)
        if "notes" in rec:
            out.update(glom(rec, notes_spec))
        return "Contacts", key, out

    return run


# ------------------------------------------------------------------------------------ (d) jsonata

JSONATA = """
(
  $name := function($v) { $v = null ? null : $title($trim($v)) };
  $low := function($v) { $v = null ? null : $lowercase($v) };
  $blank := function($v) { $v = null or $trim($v) = "" };
  $gender := {"M": "Male", "F": "Female"};
  $sources := {"WEB": "Website", "REF": "Referral", "GP": "GP Referral", "WALK": "Walk-in"};
  $src := source = null ? null : ($exists($lookup($sources, source))
      ? $lookup($sources, source) : "Other");
  $phone := $blank(mobile) ? home_phone : mobile;
  status in ["Prospect", "Referral Inquiry"] and $count(appointments) = 0 ? {
    "target": "Leads",
    "key": $trim(id),
    "out": {
      "First_Name": $name(first_name),
      "Last_Name": $name(last_name),
      "Email": $low(email),
      "Lead_Source": $src,
      "Phone": $phone,
      "Lead_Status": status,
      "Owner": {"$owner": practitioner_email}
    }
  } : {
    "target": "Contacts",
    "key": $trim(id),
    "out": $merge([{
      "First_Name": $name(first_name),
      "Last_Name": $name(last_name),
      "Email": $low(email),
      "Date_of_Birth": $substring(dob, 6, 4) & "-" & $substring(dob, 3, 2) & "-"
          & $substring(dob, 0, 2),
      "Gender": gender = null ? null : ($exists($lookup($gender, gender))
          ? $lookup($gender, gender) : "Unknown"),
      "Lead_Source": $src,
      "Mobile": $phone,
      "Mailing_Street": (address1 = null ? "" : address1) & ", "
          & (address2 = null ? "" : address2),
      "Mailing_City": city = null ? null : $trim(city),
      "Mailing_Zip": postcode = null ? null : $uppercase(postcode),
      "Account_Name": {"$ref": ["Accounts"], "key": $string(clinic_id)},
      "Owner": {"$owner": practitioner_email},
      "Source_System_ID": id,
      "Patient_Status": status
    }, $exists(notes) ? {"Description": notes = null ? null : $trim(notes)} : {}])
  }
)
"""


def build_jsonata() -> Callable[[dict], tuple] | None:
    try:
        import jsonata
    except ImportError:
        return None
    expr = jsonata.Jsonata(JSONATA)
    # JSONata has no name-aware title case; the same Python function is registered as $title
    expr.register_lambda("title", title)

    def run(rec: dict) -> tuple:
        r = expr.evaluate(rec)
        return r["target"], r["key"], r["out"]

    return run
