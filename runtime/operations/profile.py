"""`fmap profile`: what will go wrong, before anything moves.

The source is staged through the compiled mapping exactly as a run would (same transforms, same
routing), into a scratch stage, and the staged records are analysed: counts per source object and
map; records that would be quarantined, by reason (unparsable dates and numbers, values a value map
does not cover, with counts per code); required target fields left empty; duplicate candidates
(same email; same name and date of birth) listed for merge decisions; owner emails with no
destination user; attachments over the destination's size limit; orphans (references to records
the source does not have).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from runtime.executor.extract import stage_all
from runtime.executor.load import AttachmentOutsideRoot, attachment_file
from runtime.executor.run import required_fields
from runtime.executor.stage import Stage
from runtime.plan import Attachment, Plan, Ref
from runtime.schema.model import FieldType, SystemSchema

__all__ = ["ProfileReport", "profile_source"]

_VM_RE = re.compile(r"value not in value map `([^`]+)`")


@dataclass
class ProfileReport:
    migration: str | None
    source_counts: dict[str, int] = field(default_factory=dict)
    map_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    quarantine_reasons: list[dict[str, Any]] = field(default_factory=list)
    unmapped_values: list[dict[str, Any]] = field(default_factory=list)
    missing_required: list[dict[str, Any]] = field(default_factory=list)
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    owners: dict[str, Any] = field(default_factory=dict)
    oversize_attachments: list[dict[str, Any]] = field(default_factory=list)
    missing_files: int = 0
    orphans: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def problems(self) -> int:
        return (sum(q["count"] for q in self.quarantine_reasons)
                + sum(u["count"] for u in self.unmapped_values)
                + sum(m["count"] for m in self.missing_required)
                + len(self.duplicates) + len(self.oversize_attachments)
                + sum(o["count"] for o in self.orphans)
                + len(self.owners.get("unmatched", {})))


def _norm(v: Any) -> str | None:
    if v is None:
        return None
    s = str(v).strip().lower()
    return s or None


def _name_fields(schema_obj) -> tuple[str | None, str | None, str | None, str | None]:
    """(email, first name, last name, date of birth) field names of a target object, by type and
    by the names CRMs use."""
    email = first = last = dob = None
    for f in schema_obj.fields if schema_obj else []:
        low = f.api_name.lower()
        if f.type is FieldType.email and email is None and "secondary" not in low:
            email = f.api_name
        elif "first" in low and "name" in low and first is None:
            first = f.api_name
        elif "last" in low and "name" in low and last is None:
            last = f.api_name
        elif f.type is FieldType.date and ("birth" in low or "dob" in low) and dob is None:
            dob = f.api_name
    return email, first, last, dob


def profile_source(module: ModuleType, source, scratch: Path, *,
                   schema: SystemSchema | None = None, users: list | None = None,
                   attachment_limit: int | None = None, files_root: Path | None = None,
                   params: dict[str, Any] | None = None, max_listed: int = 50) -> ProfileReport:
    plan: Plan = module.PLAN
    P = {**plan.params, **(params or {})}
    report = ProfileReport(plan.migration)
    for obj in sorted({st.source for st in plan.steps}):
        try:
            report.source_counts[obj] = source.count(obj)
        except Exception:  # a source that cannot count cheaply: counted while staging
            report.source_counts[obj] = -1
    stage = Stage(scratch)
    stage.reset()
    try:
        extracted = stage_all(module, plan, source, stage, P)
        _analyse(report, plan, stage, extracted, schema, users, attachment_limit, files_root,
                 max_listed)
    finally:
        stage.close()
    return report


def _analyse(report: ProfileReport, plan: Plan, stage: Stage, extracted: dict[str, int],
             schema: SystemSchema | None, users, attachment_limit, files_root, max_listed) -> None:
    reasons: Counter = Counter()
    unmapped: Counter = Counter()
    missing: Counter = Counter()
    ready_keys: dict[str, set[str]] = defaultdict(set)
    refs: list[tuple[str, str, tuple[str, ...], str]] = []
    need = required_fields(plan, schema)
    for st in plan.steps:
        counts = Counter()
        target_obj = schema.object(st.target if st.kind == "map" else plan.step(st.target).target) \
            if schema else None
        required = need.get(st.name, ())
        email_f, first_f, last_f, dob_f = _name_fields(target_obj)
        by_email: dict[str, list[str]] = defaultdict(list)
        by_person: dict[tuple, list[str]] = defaultdict(list)
        for r in stage.records(st.name):
            counts[r.status] += 1
            if r.status in ("quarantined", "failed"):
                m = _VM_RE.search(r.detail or "")
                if m:
                    unmapped[(m.group(1), st.name, r.field or "", repr(r.value))] += 1
                else:
                    reasons[(st.name, r.status, r.field or "", _generic(r.detail))] += 1
                continue
            if r.status != "ready":
                continue
            ready_keys[st.name].add(r.source_key)
            payload = r.payload
            for f in required:
                v = payload.get(f)
                if v is None or (isinstance(v, str) and not v.strip()):
                    missing[(st.name, f)] += 1
            for f, v in payload.items():
                if isinstance(v, Ref) and v.key is not None:
                    refs.append((st.name, f, v.maps, v.key))
                elif isinstance(v, Attachment):
                    limit = attachment_limit
                    if st.attach is not None and st.attach.limit_bytes is not None:
                        limit = min(st.attach.limit_bytes, limit or st.attach.limit_bytes)
                    _check_attachment(report, st.name, r.source_key, v, limit, files_root,
                                      max_listed)
            if st.kind == "map":
                e = _norm(payload.get(email_f)) if email_f else None
                if e:
                    by_email[e].append(r.source_key)
                if last_f and dob_f and payload.get(last_f) and payload.get(dob_f):
                    person = (_norm(payload.get(first_f)) if first_f else None,
                              _norm(payload.get(last_f)), str(payload.get(dob_f)))
                    by_person[person].append(r.source_key)
        report.map_counts[st.name] = {"extracted": extracted.get(st.name, 0), **dict(counts)}
        for kind, groups in (("same email", by_email), ("same name and date of birth", by_person)):
            for keys in groups.values():
                if len(keys) > 1 and len(report.duplicates) < max_listed:
                    report.duplicates.append({"map": st.name, "match": kind, "keys": sorted(keys)})
    report.quarantine_reasons = [
        {"map": m, "status": s, "field": f, "reason": why, "count": n}
        for (m, s, f, why), n in reasons.most_common()
    ]
    report.unmapped_values = [
        {"valuemap": vm, "map": m, "field": f, "value": v, "count": n}
        for (vm, m, f, v), n in sorted(unmapped.items(), key=lambda x: (-x[1], x[0]))
    ]
    report.missing_required = [{"map": m, "field": f, "count": n}
                               for (m, f), n in missing.most_common()]
    orphans: Counter = Counter()
    examples: dict[tuple, list[str]] = defaultdict(list)
    for step, f, maps, key in refs:
        if not any(key in ready_keys.get(m, ()) for m in maps):
            orphans[(step, f, " | ".join(maps))] += 1
            if len(examples[(step, f, " | ".join(maps))]) < 5:
                examples[(step, f, " | ".join(maps))].append(key)
    report.orphans = [{"map": s, "field": f, "references": t, "count": n,
                       "example_keys": examples[(s, f, t)]}
                      for (s, f, t), n in orphans.most_common()]
    emails = stage.owner_emails()
    if users is not None:
        known = {u.email.strip().lower() for u in users if u.active}
        report.owners = {"emails": len(emails),
                         "unmatched": {e: n for e, n in emails.items() if e not in known}}
    else:
        report.owners = {"emails": len(emails), "unmatched": {}, "note": "no target given"}


def _generic(detail: str | None) -> str:
    """Group reasons without record-specific text (keys, numbers)."""
    text = detail or "unknown"
    return re.sub(r"record \S+ was", "record … was", text)


def _check_attachment(report: ProfileReport, step: str, key: str, a: Attachment,
                      limit: int | None, files_root: Path | None, max_listed: int) -> None:
    try:
        p = attachment_file(a, files_root)
    except AttachmentOutsideRoot:  # the loader quarantines it: not a file of the export
        report.missing_files += 1
        return
    if p is None:  # no file for this record
        return
    if not p.is_file():
        report.missing_files += 1
        return
    size = p.stat().st_size
    if limit is not None and size > limit and len(report.oversize_attachments) < max_listed:
        report.oversize_attachments.append({"map": step, "key": key, "file": p.name,
                                            "size_mb": round(size / 1048576, 1),
                                            "limit_mb": round(limit / 1048576, 1)})

