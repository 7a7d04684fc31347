"""One wrong and one right .fmap snippet per name-resolution diagnostic (FM2xx).

A plain table, used by tests/compiler/test_resolve.py and meant to generate docs/diagnostics.md:
each case's `wrong` source yields the code at (line, column) with a hint containing `hint`; its
`right` source is the same mapping fixed, which yields no diagnostic of that code. Imports in these
snippets are resolved relative to tests/fixtures/fmap/ (which holds `common.fmap`).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Case", "CASES", "HEADER"]


@dataclass(frozen=True)
class Case:
    code: str
    title: str
    wrong: str
    right: str
    line: int  # where `wrong` reports the code (1-based)
    column: int
    hint: str  # a substring of the diagnostic's hint


HEADER = 'migration "Example"\nsource aeronaclinic\ntarget zoho\n'
H = HEADER

CASES: list[Case] = [
    Case("FM201", "duplicate map",
         H + "map patients -> Contacts {\n  key id\n}\nmap patients -> Contacts {\n  key id\n}\n",
         H + "map patients -> Contacts {\n  key id\n}\n"
         "map patients -> Contacts as secondary {\n  key id\n}\n",
         7, 1, "as other_name"),
    Case("FM202", "undefined value map",
         H + 'valuemap gender { "M" -> "Male"  _ -> error }\n'
         "map patients -> Contacts {\n  key id\n  Gender = sex | gendr\n}\n",
         H + 'valuemap gender { "M" -> "Male"  _ -> error }\n'
         "map patients -> Contacts {\n  key id\n  Gender = sex | gender\n}\n",
         7, 18, "did you mean `gender`?"),
    Case("FM203", "unknown function",
         H + "map patients -> Contacts {\n  key id\n  Last_Name = trimm(surname)\n}\n",
         H + "map patients -> Contacts {\n  key id\n  Last_Name = trim(surname)\n}\n",
         6, 15, "did you mean `trim`?"),
    Case("FM204", "wrong number of arguments",
         H + "map patients -> Contacts {\n  key id\n  Description = notes | truncate\n}\n",
         H + "map patients -> Contacts {\n  key id\n  Description = notes | truncate(32000)\n}\n",
         6, 17, "truncate("),
    Case("FM205", "`parent` outside an array map",
         H + "map appointments -> Events {\n  key id\n  Who_Id = parent.id\n}\n",
         H + "map patients.appointments[] -> Events {\n  key id\n  Who_Id = parent.id\n}\n",
         6, 12, "map records.items[]"),
    Case("FM206", "duplicate field assignment",
         H + "map patients -> Contacts {\n  key id\n  Email = email\n  Email = alt_email\n}\n",
         H + "map patients -> Contacts {\n  key id\n  Email = email ?? alt_email\n}\n",
         7, 3, "combine them with `??`"),
    Case("FM207", "undefined parameter",
         H + 'param fallback = "x@example.com"\n'
         "map patients -> Contacts {\n  key id\n  Email = email ?? $fallbak\n}\n",
         H + 'param fallback = "x@example.com"\n'
         "map patients -> Contacts {\n  key id\n  Email = email ?? $fallback\n}\n",
         7, 20, "did you mean `fallback`?"),
    Case("FM208", "duplicate definition",
         H + 'valuemap status { "A" -> "Active"  _ -> error }\n'
         'valuemap status { "I" -> "Inactive"  _ -> error }\n'
         "map patients -> Contacts {\n  key id\n  Status = status | status\n}\n",
         H + 'valuemap status { "A" -> "Active"  "I" -> "Inactive"  _ -> error }\n'
         "map patients -> Contacts {\n  key id\n  Status = status | status\n}\n",
         5, 10, "rename or remove one"),
    Case("FM209", "value map without an unmapped policy",
         H + 'valuemap gender { "M" -> "Male" }\n'
         "map patients -> Contacts {\n  key id\n  Gender = sex | gender\n}\n",
         H + 'valuemap gender { "M" -> "Male"  _ -> "Unknown" }\n'
         "map patients -> Contacts {\n  key id\n  Gender = sex | gender\n}\n",
         4, 10, "_ -> error"),
    Case("FM210", "`group` outside a merge",
         H + "map patients -> Contacts {\n  key id\n  Balance = sum(group.balance)\n}\n",
         H + "map patients -> Contacts {\n  key id\n}\n"
         "merge patients.invoices[] -> Contacts by parent.id {\n  Balance = sum(group.balance)\n}\n",
         6, 17, "merge children -> ParentMap"),
    Case("FM211", "map without a key",
         H + "map clinics -> Accounts {\n  Account_Name = name\n}\n",
         H + "map clinics -> Accounts {\n  key id\n  Account_Name = name\n}\n",
         4, 1, "add `key id`"),
    Case("FM212", "unknown keyword argument",
         H + 'map patients -> Contacts {\n  key id\n  Created = created | datetime(tzz="Europe/London")\n}\n',
         H + 'map patients -> Contacts {\n  key id\n  Created = created | datetime(tz="Europe/London")\n}\n',
         6, 32, "did you mean `tz`?"),
    Case("FM213", "missing header",
         'migration "Example"\ntarget zoho\nmap patients -> Contacts {\n  key id\n}\n',
         H + "map patients -> Contacts {\n  key id\n}\n",
         3, 1, "add e.g. `source aeronaclinic`"),
    Case("FM214", "duplicate value-map key",
         H + 'valuemap status { "A" -> "Active"  "A" -> "Archived"  _ -> error }\n'
         "map patients -> Contacts {\n  key id\n  Status = status | status\n}\n",
         H + 'valuemap status { "A" -> "Active"  "R" -> "Archived"  _ -> error }\n'
         "map patients -> Contacts {\n  key id\n  Status = status | status\n}\n",
         4, 36, "remove one of the entries"),
    Case("FM215", "`split` of an unassigned field",
         H + "map notes -> Notes {\n  key id\n  Note_Content = body\n  split Note_Contnt max 32000\n}\n",
         H + "map notes -> Notes {\n  key id\n  Note_Content = body\n  split Note_Content max 32000\n}\n",
         7, 9, "did you mean `Note_Content`?"),
    Case("FM216", "import not found",
         H + 'import "comon.fmap"\n',
         H + 'import "common.fmap"\n',
         4, 1, "paths are relative to"),
    Case("FM217", "routing without a fallback",
         H + 'map patients -> Leads where status == "Prospect" {\n  key id\n}\n',
         H + 'map patients -> Leads where status == "Prospect" {\n  key id\n}\n'
         "map patients -> Contacts otherwise {\n  key id\n}\n",
         4, 23, "add a map with `otherwise`"),
    Case("FM218", "more than one `otherwise`",
         H + 'map patients -> Leads where status == "Prospect" {\n  key id\n}\n'
         "map patients -> Contacts otherwise {\n  key id\n}\n"
         "map patients -> Accounts otherwise {\n  key id\n}\n",
         H + 'map patients -> Leads where status == "Prospect" {\n  key id\n}\n'
         "map patients -> Contacts otherwise {\n  key id\n}\n",
         10, 26, "one map per source"),
    Case("FM219", "duplicate key in test data",
         H + "map patients -> Contacts {\n  key id\n  Email = email\n}\n"
         'test "email" {\n  given patients {id: "1", email: "a@b.c", email: "d@e.f"}\n'
         '  expect Contacts { Email = "a@b.c" }\n}\n',
         H + "map patients -> Contacts {\n  key id\n  Email = email\n}\n"
         'test "email" {\n  given patients {id: "1", email: "a@b.c"}\n'
         '  expect Contacts { Email = "a@b.c" }\n}\n',
         9, 44, "remove one of them"),
    Case("FM220", "unknown test target",
         H + "map patients -> Contacts {\n  key id\n  Email = email\n}\n"
         'test "email" {\n  given patients {id: "1", email: "a@b.c"}\n'
         '  expect Contact { Email = "a@b.c" }\n}\n',
         H + "map patients -> Contacts {\n  key id\n  Email = email\n}\n"
         'test "email" {\n  given patients {id: "1", email: "a@b.c"}\n'
         '  expect Contacts { Email = "a@b.c" }\n}\n',
         10, 10, "did you mean `Contacts`?"),
    Case("FM221", "unused value map or parameter",
         H + 'valuemap gender { "M" -> "Male"  _ -> error }\n'
         "map patients -> Contacts {\n  key id\n  Gender = sex\n}\n",
         H + 'valuemap gender { "M" -> "Male"  _ -> error }\n'
         "map patients -> Contacts {\n  key id\n  Gender = sex | gender\n}\n",
         4, 10, "apply it with `field | gender`"),
    Case("FM222", "unknown unmapped policy or option",
         'migration "Example"\nsource aeronaclinic\ntarget zoho(editon="professional")\n',
         'migration "Example"\nsource aeronaclinic\ntarget zoho(edition="professional")\n',
         3, 13, "did you mean `edition`?"),
    Case("FM223", "unknown type",
         H + "create module Insurance {\n  Policy_No txt(20)\n}\n",
         H + "create module Insurance {\n  Policy_No text(20)\n}\n",
         5, 13, "did you mean `text`?"),
    Case("FM224", "owner() without an owners policy",
         H + "map patients -> Contacts {\n  key id\n  Owner = owner(practitioner_email)\n}\n",
         H + "owners by email else reject\n"
         "map patients -> Contacts {\n  key id\n  Owner = owner(practitioner_email)\n}\n",
         6, 11, "owners by email else"),
    Case("FM225", "reference to no map",
         H + "map clinics -> Accounts {\n  key id\n}\n"
         "map patients -> Contacts {\n  key id\n  Account_Name = ref(Acounts, clinic_id)\n}\n",
         H + "map clinics -> Accounts {\n  key id\n}\n"
         "map patients -> Contacts {\n  key id\n  Account_Name = ref(Accounts, clinic_id)\n}\n",
         9, 22, "did you mean `Accounts`?"),
]
