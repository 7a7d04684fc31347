"""Generate a large, valid .fmap file for parser benchmarks (deterministic)."""

from __future__ import annotations


def generate(lines: int) -> str:
    out = [
        'migration "Benchmark"',
        "source aeronaclinic",
        "target zoho",
        'param fallback_owner = "owner@example.com"',
        "owners by email else $fallback_owner",
        "",
    ]
    i = 0
    while len(out) < lines:
        out += [
            f"valuemap status_{i} {{",
            '  "A" -> "Active"',
            '  "I", "X" -> "Inactive"',
            '  _ -> "Unknown"',
            "}",
            "",
            f"# patients, variant {i}",
            f"map patients -> Contacts as contacts_{i} where status in [\"Active\", \"New\"] {{",
            "  key id",
            "  First_Name    = first_name | trim | title",
            "  Last_Name     = last_name | trim | title ?? \"Unknown\"",
            "  Email         = email | lower",
            '  Date_of_Birth = dob | date("%d/%m/%Y")',
            f"  Status        = status | status_{i}",
            "  Account_Name  = ref(Accounts, clinic_id)",
            "  Owner         = owner(practitioner_email)",
            '  Mailing_Street = address_line1 ++ ", " ++ address_line2',
            "  Age_Group     = if age(dob) >= 18 then \"Adult\" else \"Child\"",
            "}",
            "",
        ]
        i += 1
    return "\n".join(out) + "\n"
