"""Custom module/field naming rules per CRM (table-driven, sqlglot-style)."""

from __future__ import annotations

import pytest

from runtime.dialects import UnsupportedByDialect, get_dialect

# (dialect, kind, name, expected problem substrings; [] = valid)
CHECKS = [
    ("salesforce", "field", "Source_System_ID__c", []),
    ("salesforce", "module", "Treatment_Plan__c", []),
    ("salesforce", "field", "acme__Score__c", ["two consecutive underscores"]),  # no namespaces
    ("salesforce", "field", "Source_System_ID", ["must end with '__c'"]),
    ("salesforce", "field", "A" * 41 + "__c", ["41 characters before '__c'; the limit is 40"]),
    ("salesforce", "field", "A" * 40 + "__c", []),
    ("salesforce", "field", "1st_Visit__c", ["must start with a letter"]),
    ("salesforce", "field", "Bad__Name__c", ["two consecutive underscores"]),
    ("salesforce", "field", "Trailing___c", ["end with an underscore"]),
    ("salesforce", "field", "a__b__c__c", ["two consecutive underscores"]),
    ("salesforce", "field", "Has Space__c", ["only letters, digits and underscores"]),
    ("salesforce", "field", "__c", ["nothing before '__c'"]),
    ("zoho", "field", "NHS_Number", []),
    ("zoho", "module", "Patient_Details", []),
    ("zoho", "field", "NHS Number", ["only letters, digits and underscores"]),
    ("zoho", "field", "Enrich_Status__s", ["reserves for system fields"]),
    ("zoho", "field", "_Hidden", ["must start with a letter"]),
    ("zoho", "field", "Two__Underscores", ["consecutive underscores"]),
    ("zoho", "field", "Trailing_", ["must not end with an underscore"]),
    ("zoho", "field", "", ["empty"]),
    ("freshsales", "field", "cf_nhs_number", []),
    ("freshsales", "field", "nhs_number", ["must start with 'cf_'"]),
    ("freshsales", "field", "cf_NHS_Number", ["lower-case snake_case"]),
    ("freshsales", "field", "cf_1st_visit", ["lower-case snake_case"]),
    ("freshsales", "module", "treatment_plans", []),
    ("freshsales", "module", "Treatment Plans", ["lower-case snake_case"]),
    ("pipedrive", "field", "Outstanding Balance", []),
    ("pipedrive", "field", "", ["empty"]),
    ("pipedrive", "field", "   ", ["empty"]),
    ("pipedrive", "field", "!!!", ["no letters or digits"]),
    ("pipedrive", "field", "x" * 256, ["limit is 255"]),
    ("pipedrive", "module", "Treatment_Plans", ["no custom objects"]),
]


@pytest.mark.parametrize(("dialect", "kind", "name", "expected"), CHECKS,
                         ids=[f"{d}-{k}-{n[:20] or 'empty'}" for d, k, n, _ in CHECKS])
def test_check_custom_name(dialect, kind, name, expected):
    problems = get_dialect(dialect).check_custom_name(kind, name)
    if not expected:
        assert problems == []
    for needle in expected:
        assert any(needle in p for p in problems), problems


NAMES = [
    ("zoho", "field", "Outstanding Balance", "Outstanding_Balance"),
    ("zoho", "module", "Treatment Plans", "Treatment_Plans"),
    ("zoho", "field", "Date of Birth (UK)", "Date_of_Birth_UK"),
    ("zoho", "field", "2nd Phone", "X2nd_Phone"),
    ("salesforce", "field", "Source System ID", "Source_System_ID__c"),
    ("salesforce", "module", "Treatment Plan", "Treatment_Plan__c"),
    ("salesforce", "field", "1st visit date", "X1st_visit_date__c"),
    ("salesforce", "field", "Already__c", "Already__c"),
    ("salesforce", "field", "Ä very long label " * 5, ("A_very_long_label_" * 3)[:40].rstrip("_") + "__c"),
    ("freshsales", "field", "Outstanding Balance", "cf_outstanding_balance"),
    ("freshsales", "field", "cf_nhs_number", "cf_nhs_number"),
    ("freshsales", "field", "NHS-Number", "cf_nhs_number"),
    ("freshsales", "module", "Treatment Plans", "treatment_plans"),
    ("pipedrive", "field", "Outstanding Balance", "Outstanding_Balance"),
    ("pipedrive", "field", "Last payment date", "Last_payment_date"),
]


@pytest.mark.parametrize(("dialect", "kind", "label", "expected"), NAMES,
                         ids=[f"{d}-{k}-{label[:20]}" for d, k, label, _ in NAMES])
def test_custom_api_name(dialect, kind, label, expected):
    d = get_dialect(dialect)
    name = d.custom_api_name(label, kind)
    assert name == expected
    if dialect != "pipedrive":
        assert d.check_custom_name(kind, name) == []  # generated names pass the dialect's own rules


def test_pipedrive_has_no_custom_objects():
    with pytest.raises(UnsupportedByDialect, match="no custom objects"):
        get_dialect("pipedrive").custom_api_name("Treatment Plans", "module")
