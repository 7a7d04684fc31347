"""API-call and duration estimates, checked against hand-computed figures."""

from __future__ import annotations

import pytest

from runtime.dialects import get_dialect
from runtime.operations.estimate import (
    EstimateStep,
    estimate_plan,
    format_duration,
    parse_counts,
    render_estimate,
)

STEPS = [
    EstimateStep("Accounts", "map", "clinics", "Accounts"),
    EstimateStep("Contacts", "map", "patients", "Contacts", owners=True),
    EstimateStep("patients.appointments->Contacts", "merge", "patients.appointments[]",
                 "Contacts"),
    EstimateStep("Attachments", "map", "documents", "Attachments", attachments=True),
]


def test_parse_counts():
    assert parse_counts("patients=10000, clinics=3,patients.appointments=1_000") == {
        "patients": 10000, "clinics": 3, "patients.appointments": 1000}
    with pytest.raises(ValueError):
        parse_counts("patients")
    with pytest.raises(ValueError):
        parse_counts("patients=ten")


def test_zoho_credits_by_hand():
    est = estimate_plan(STEPS, {"clinics": 3, "patients": 10050, "documents": 40},
                        get_dialect("zoho"), tier="professional", users=10)
    rows = {s.name: (s.records, s.write_calls, s.read_calls, s.attachment_calls, s.cost)
            for s in est.steps}
    # 3 clinics: one call of 3 records = ceil(3/10) = 1 credit
    assert rows["Accounts"] == (3, 1, 0, 0, 1)
    # 10,050 patients: 100 calls of 100 (10 credits each) + 1 call of 50 (5 credits)
    assert rows["Contacts"] == (10050, 101, 0, 0, 1005)
    # a merge updates each parent once: same writes, plus one before-image read per batch
    assert rows["patients.appointments->Contacts"] == (10050, 101, 101, 0, 1005 + 101)
    # 40 documents: one create call of 40 records (4 credits) + 40 uploads (1 credit each)
    assert rows["Attachments"] == (40, 1, 0, 40, 44)
    assert (est.other_calls, est.other_cost) == (1, 1)  # list users for owner()
    assert est.calls == 1 + 101 + 202 + 41 + 1 == 346
    assert est.cost == 1 + 1005 + 1106 + 44 + 1 == 2157
    assert est.budget == 50_000 + 500 * 10
    assert est.concurrency == 15
    assert est.bound == "latency"
    assert est.duration_s == pytest.approx(346 * 0.5 / 15)
    text = render_estimate(est)
    assert "2,157" in text and "55,000 credits per 24 h" in text and "(3.9%)" in text


def test_zoho_over_budget_spreads_over_days():
    est = estimate_plan(STEPS[1:2], {"patients": 100_000}, get_dialect("zoho"), tier="free")
    assert est.cost == 1000 * 10 + 1  # + list users
    assert est.budget == 5_000
    assert est.bound == "budget"
    assert est.duration_s == 2 * 86_400  # 10,001 credits at 5,000 a day: 3 days, 2 of waiting
    assert any("spreads over 3 periods" in n for n in est.notes)


def test_pipedrive_tokens_by_hand():
    steps = [EstimateStep("Person", "map", "patients", "Person", owners=True),
             EstimateStep("balances->Person", "merge", "patients.invoices[]", "Person")]
    est = estimate_plan(steps, {"patients": 1000}, get_dialect("pipedrive"), tier="growth",
                        users=3, latency_s=0.1)
    rows = {s.name: (s.write_calls, s.read_calls, s.cost) for s in est.steps}
    assert rows["Person"] == (1000, 0, 5000)  # one record per call, 5 tokens a write
    assert rows["balances->Person"] == (1000, 1000, 5000 + 1000)  # + 1 token per get
    assert est.other_cost == 10  # list users: 10 tokens
    assert est.calls == 3001 and est.cost == 11_010
    assert est.budget == 30_000 * 2 * 3
    assert est.unit == "tokens"
    # 3,001 calls: latency 300.1 s at concurrency 1; burst 40 per 2 s: 150.05 s
    assert est.bound == "latency" and est.duration_s == pytest.approx(300.1)
    fast = estimate_plan(steps, {"patients": 1000}, get_dialect("pipedrive"), tier="growth",
                         users=3, latency_s=0.01)
    assert fast.bound == "burst" and fast.duration_s == pytest.approx(3001 * 2 / 40)


def test_pipedrive_lite_over_budget():
    est = estimate_plan([EstimateStep("Person", "map", "patients", "Person")],
                        {"patients": 7000}, get_dialect("pipedrive"), tier="lite")
    assert est.cost == 35_000 and est.budget == 30_000
    assert est.bound == "budget" and est.duration_s == 86_400


def test_missing_counts_and_unknown_tier():
    est = estimate_plan(STEPS[:1], {}, get_dialect("salesforce"))
    assert est.tier == "enterprise" and est.steps[0].records == 0
    assert est.notes == ["no count for clinics (step Accounts): 0 assumed"]
    with pytest.raises(ValueError, match="no plan tier"):
        estimate_plan(STEPS, {}, get_dialect("zoho"), tier="gold")


def test_freshsales_hourly_budget():
    est = estimate_plan([EstimateStep("Contacts", "map", "patients", "Contacts")],
                        {"patients": 250_000}, get_dialect("freshsales"), tier="growth")
    calls = est.calls
    assert est.period_s == 3600 and est.budget == 1000
    assert est.duration_s == (-(-calls // 1000) - 1) * 3600


def test_format_duration():
    assert format_duration(0) == "0s"
    assert format_duration(11.2) == "12s"
    assert format_duration(90061) == "1d 1h 1m 1s"
