"""`fmap plan --estimate`: API calls and duration from record counts and the plan tier's limits.

Per step: ``records`` (from ``--counts``: the step's source object, nested arrays as
``patients.appointments``; a merge updates at most one record per parent, so it uses its root
object's count), then

- **writes**: ``ceil(records / batch_size)`` calls; deferred lookups add the same again as updates;
- **reads**: one ``get`` per update batch (merges, deferred updates) for the before-images
  rollback needs; lookups are resolved from the local id map (no API reads); one ``list users``
  call per run when the mapping resolves owners;
- **attachments**: one upload call per record of a map with an ``attach`` rule.

Costs follow the dialect's rate-limit model: Zoho credits (a write call costs
``ceil(records_in_call / 10)`` credits, other calls 1), Pipedrive tokens (write 5, get 1,
list 10, upload 5; one record per call), Salesforce/Freshsales one request per call. The budget
is the tier's allowance (Zoho/Salesforce: ``base + per_user x users`` capped by ``max``, per 24 h;
Pipedrive: ``base x multiplier x users`` tokens per day; Freshsales: ``per_hour``).

Duration is the largest of: latency-bound (``calls x latency / concurrency``), burst-bound
(Pipedrive ``burst`` per ``burst_window_s``; Freshsales ``per_minute``) and budget-bound (when the
cost exceeds one period's budget, the load waits for ``ceil(cost / budget) - 1`` more periods).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["EstimateStep", "StepEstimate", "Estimate", "estimate_plan", "parse_counts",
           "render_estimate", "COSTS"]

# per dialect rate-limit kind: (unit, write cost model, read, list, upload)
COSTS: dict[str, dict[str, Any]] = {
    "credits_24h": {"unit": "credits", "period_s": 86_400, "write": "per10", "read": 1, "list": 1,
                    "upload": 1},
    "token_budget": {"unit": "tokens", "period_s": 86_400, "write": 5, "read": 1, "list": 10,
                     "upload": 5},
    "requests_24h": {"unit": "requests", "period_s": 86_400, "write": 1, "read": 1, "list": 1,
                     "upload": 1},
    "requests_hour": {"unit": "requests", "period_s": 3_600, "write": 1, "read": 1, "list": 1,
                      "upload": 1},
}


@dataclass(frozen=True)
class EstimateStep:
    name: str
    kind: str  # map | merge
    source: str  # "patients", "patients.appointments[]"
    target: str
    deferred: bool = False
    owners: bool = False
    attachments: bool = False


@dataclass
class StepEstimate:
    name: str
    target: str
    records: int
    write_calls: int
    read_calls: int
    attachment_calls: int
    cost: int

    @property
    def calls(self) -> int:
        return self.write_calls + self.read_calls + self.attachment_calls


@dataclass
class Estimate:
    dialect: str
    tier: str
    users: int
    unit: str
    steps: list[StepEstimate]
    other_calls: int  # list users
    other_cost: int
    budget: int | None  # per period
    period_s: int
    concurrency: int
    latency_s: float
    duration_s: float
    bound: str  # latency | burst | budget
    notes: list[str] = field(default_factory=list)

    @property
    def calls(self) -> int:
        return sum(s.calls for s in self.steps) + self.other_calls

    @property
    def cost(self) -> int:
        return sum(s.cost for s in self.steps) + self.other_cost


def parse_counts(text: str) -> dict[str, int]:
    """``patients=10000,clinics=3`` -> {"patients": 10000, "clinics": 3}."""
    out: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        if not sep or not value.strip().replace("_", "").isdigit():
            raise ValueError(f"--counts expects object=number, got {part!r}")
        out[name.strip()] = int(value.strip().replace("_", ""))
    return out


def _count_for(source: str, counts: Mapping[str, int], merge: bool) -> int | None:
    path = source.replace("[]", "")
    if merge:
        path = path.split(".", 1)[0]
    for key in (path, path.rsplit(".", 1)[-1]):
        if key in counts:
            return counts[key]
    return None


def _write_cost(model: Any, records: int, batch: int) -> int:
    calls = math.ceil(records / batch) if records else 0
    if model == "per10":
        full, rem = divmod(records, batch)
        return full * math.ceil(batch / 10) + (math.ceil(rem / 10) if rem else 0)
    return calls * int(model)


def estimate_plan(steps: Iterable[EstimateStep], counts: Mapping[str, int], dialect: Any, *,
                  tier: str | None = None, users: int = 1, latency_s: float = 0.5) -> Estimate:
    rl = dialect.rate_limit
    costs = COSTS[rl.kind]
    tier = tier or rl.default_plan or next(iter(rl.plans), "")
    if tier not in rl.plans:
        raise ValueError(f"{dialect.name} has no plan tier {tier!r} "
                         f"(one of: {', '.join(rl.plans)})")
    limits = rl.plans[tier]
    batch = max(1, dialect.batch_size)
    notes: list[str] = []
    out: list[StepEstimate] = []
    any_owner = False
    for st in steps:
        n = _count_for(st.source, counts, st.kind == "merge")
        if n is None:
            notes.append(f"no count for {st.source.replace('[]', '')} (step {st.name}): 0 assumed")
            n = 0
        any_owner = any_owner or st.owners
        write_calls = math.ceil(n / batch)
        cost = _write_cost(costs["write"], n, batch)
        read_calls = 0
        if st.kind == "merge":
            read_calls += write_calls  # before-images of the updated parents
        if st.deferred:
            write_calls += math.ceil(n / batch)
            cost += _write_cost(costs["write"], n, batch)
            read_calls += math.ceil(n / batch)
        att = n if st.attachments else 0
        cost += read_calls * costs["read"] + att * costs["upload"]
        out.append(StepEstimate(st.name, st.target, n, write_calls, read_calls, att, cost))
    other_calls = 1 if any_owner else 0
    other_cost = costs["list"] * other_calls
    if rl.kind in ("credits_24h", "requests_24h"):
        budget = (limits.base or 0) + (limits.per_user or 0) * users
        if limits.max is not None:
            budget = min(budget, limits.max)
    elif rl.kind == "token_budget":
        budget = (limits.base or 0) * (limits.multiplier or 1) * users
    else:
        budget = limits.per_hour
    concurrency = limits.concurrency or rl.concurrency or 1
    est = Estimate(dialect.name, tier, users, costs["unit"], out, other_calls, other_cost,
                   budget, costs["period_s"], concurrency, latency_s, 0.0, "latency", notes)
    bounds = {"latency": est.calls * latency_s / concurrency}
    if limits.burst and limits.burst_window_s:
        bounds["burst"] = est.calls * limits.burst_window_s / limits.burst
    if limits.per_minute:
        bounds["burst"] = max(bounds.get("burst", 0.0), est.calls * 60 / limits.per_minute)
    if budget:
        periods = math.ceil(est.cost / budget) if est.cost else 0
        bounds["budget"] = max(periods - 1, 0) * costs["period_s"]
        if est.cost > budget:
            notes.append(f"the load needs {est.cost:,} {costs['unit']}, more than one period's "
                         f"budget ({budget:,}): it spreads over {periods} periods")
    est.bound, est.duration_s = max(bounds.items(), key=lambda kv: kv[1])
    return est


def format_duration(seconds: float) -> str:
    seconds = int(math.ceil(seconds))
    d, rem = divmod(seconds, 86_400)
    h, rem = divmod(rem, 3_600)
    m, s = divmod(rem, 60)
    parts = [f"{d}d" if d else "", f"{h}h" if h else "", f"{m}m" if m else "",
             f"{s}s" if s or not (d or h or m) else ""]
    return " ".join(p for p in parts if p)


def render_estimate(est: Estimate) -> str:
    """A plain-text table (what `fmap plan --estimate` prints)."""
    head = ("step", "target", "records", "writes", "reads", "files", "calls", est.unit)
    rows = [(s.name, s.target, f"{s.records:,}", f"{s.write_calls:,}", f"{s.read_calls:,}",
             f"{s.attachment_calls:,}", f"{s.calls:,}", f"{s.cost:,}") for s in est.steps]
    if est.other_calls:
        rows.append(("(list users)", "", "", "", f"{est.other_calls}", "", f"{est.other_calls}",
                     f"{est.other_cost}"))
    rows.append(("total", "", f"{sum(s.records for s in est.steps):,}",
                 f"{sum(s.write_calls for s in est.steps):,}",
                 f"{sum(s.read_calls for s in est.steps) + est.other_calls:,}",
                 f"{sum(s.attachment_calls for s in est.steps):,}", f"{est.calls:,}",
                 f"{est.cost:,}"))
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]

    def line(r: tuple) -> str:
        return "  ".join(str(c).ljust(w) if i < 2 else str(c).rjust(w)
                         for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip()

    out = [f"API estimate: {est.dialect}, plan {est.tier}, {est.users} user(s)", line(head),
           line(tuple("-" * w for w in widths)), *map(line, rows), ""]
    period = "24 h" if est.period_s == 86_400 else "hour"
    if est.budget:
        share = est.cost / est.budget * 100
        out.append(f"budget: {est.budget:,} {est.unit} per {period}; this load uses "
                   f"{est.cost:,} ({share:.1f}%)")
    out.append(f"duration: about {format_duration(est.duration_s)} ({est.bound}-bound; "
               f"{est.concurrency} concurrent call(s), {est.latency_s:g} s per call)")
    out.extend(f"note: {n}" for n in est.notes)
    return "\n".join(out) + "\n"
