"""Generate a large, valid, realistic .fmap file for parser benchmarks (deterministic).

The text looks like the mappings consultants write (see tests/fixtures/fmap/): a header, comments
(full-line and trailing), blank lines between blocks, value maps with multi-key entries and every
unmapped policy, custom-schema blocks, routed maps, nested-array maps with `parent`, merges, skip
rules, attachments, split notes and test blocks, repeated with varied names until the requested
number of lines is reached. No padding with trivial lines: every line is something a parser must
really work on, so lines/s means what it says.
"""

from __future__ import annotations

HEADER = '''# Generated benchmark mapping: AeronaClinic -> Zoho CRM
migration "Benchmark"
source aeronaclinic "mappings/schemas/aeronaclinic_api.yaml"
target zoho(edition="enterprise", users=25)

param fallback_owner = "practice.manager@example.com"   # overridable at run time
param cutoff = @2015-01-01
owners by email else $fallback_owner
'''

BLOCK = '''
# ---- clinic group {i} (each group's export is a separate source)
valuemap gender_{i} {{
  "M", "m", "Male"     -> "Male"
  "F", "f", "Female"   -> "Female"
  "X"                  -> "Non-binary"
  null                 -> "Unknown"
  _                    -> quarantine
}}

valuemap appointment_status_{i} {{
  "Confirmed" -> "Confirmed"
  "DNA"       -> "No Show"   # did not attend
  "Complete"  -> "Completed"
  _           -> error
}}

create module Patient_Details_{i} "Patient Details {i}" {{
  NHS_Number   text(10) unique sensitive "NHS Number"
  Allergies    textarea
  Contact      lookup(Contacts) required
  Status       picklist values ["Active", "Inactive", "Archived"]
  Balance      currency(16, 2)
}}

# clinics become accounts
map clinics_{i} -> Accounts as accounts_{i} {{
  key id
  Account_Name = name | trim
  Phone        = phone | phone("GB")
}}

# Prospects with no appointment become Leads
map group{i}_patients -> Leads as leads_{i} where status in ["Prospect", "Referral Inquiry"] and count(appointments) == 0 {{
  key "aerona-" ++ id
  First_Name  = first_name | trim | title
  Last_Name   = last_name | trim | title ?? "Unknown"
  Email       = email | lower
  Phone       = mobile ?? home_phone | phone("GB")
  Lead_Source = "Referral"
  skip when created < $cutoff because "older than the cutoff"
}}

# everyone else is a Contact of their clinic
map group{i}_patients -> Contacts as contacts_{i} otherwise {{
  key "aerona-" ++ id
  First_Name      = first_name | trim | title
  Last_Name       = last_name | trim | title
  Email           = email | lower
  Date_of_Birth   = dob | date("%d/%m/%Y")
  Gender          = gender | gender_{i}
  Account_Name    = ref(accounts_{i}, clinic_id)
  Owner           = owner(practitioner.email)
  Mailing_Street  = address.line1 ++ ", " ++ address.line2
  Age_Group       = if age(dob) >= 18 then "Adult" else "Child"
  Balance         = total_billed - total_paid * 1.0
  sensitive Date_of_Birth, Email
  mode upsert
}}

map group{i}_patients.appointments[] -> Events as events_{i} {{
  key id
  Event_Title    = "Appointment: " ++ (treatment ?? "check-up")
  Start_DateTime = start | datetime(tz="Europe/London")
  Who_Id         = ref(contacts_{i} | leads_{i}, parent.id)
  Status         = status | appointment_status_{i}
  Notes          = notes | html_to_text | truncate(2000, ellipsis="...")
}}

merge group{i}_patients.invoices[] -> contacts_{i} by parent.id {{
  Outstanding_Balance = sum(group.balance)
  Last_Payment_Date   = max(group.paid_on)
}}

map group{i}_clinical_notes -> Notes as notes_{i} {{
  key id
  Parent_Id    = ref(contacts_{i}, patient_id)
  Note_Content = body | html_to_text
  split Note_Content max 32000 prefix "({{n}}/{{total}}) "
}}

map group{i}_documents -> Attachments as files_{i} {{
  key id
  Parent_Id = ref(contacts_{i}, patient_id)
  attach path as file_name limit 25MB oversize quarantine
}}

test "patient {i} becomes a contact" {{
  given group{i}_patients {{id: "{i}", first_name: " ann ", gender: "F", status: "Active", appointments: [{{id: "a{i}", status: "DNA"}}]}}
  expect contacts_{i} {{
    First_Name = "Ann"
    Gender     = "Female"
  }}
  expect leads_{i} none
}}
'''

FOOTER = '''
not migrated workflows "Rebuild appointment reminders in Zoho Blueprint"
not migrated patients.portal_password "Patients re-register on the new portal"
'''


def generate(lines: int) -> str:
    out = [HEADER]
    count = HEADER.count("\n") + FOOTER.count("\n")
    i = 0
    while count < lines:
        block = BLOCK.format(i=i)
        out.append(block)
        count += block.count("\n")
        i += 1
    out.append(FOOTER)
    return "".join(out)


if __name__ == "__main__":
    import sys

    sys.stdout.write(generate(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000))
