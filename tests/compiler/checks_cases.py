"""The schema checks (FM3xx, and FM401 as `fmap check` reports it), one table row per code.

Each :class:`Case` is a small mapping with one mistake (``wrong``) and the same mapping fixed
(``right``), the position of the diagnostic (``at``, ``line:col`` in ``wrong``) and a piece of its
hint. ``files`` are written next to the .fmap (the source schema, org snapshots). The tests in
``test_checks_cases.py`` run every row; ``scripts/gen_diagnostics_doc.py`` turns the rows into the
examples of docs/diagnostics.md, so the documentation shows what the tests prove.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Case", "CASES", "CLINIC_YAML", "HEADER", "SF_HEADER"]

# The source schema every case reads (`source clinic` -> schemas/clinic.yaml next to the .fmap).
CLINIC_YAML = """\
system: clinic
kind: source
objects:
  - api_name: patients
    key: id
    fields:
      - {api_name: id, type: id}
      - {api_name: first_name, type: text, max_length: 40}
      - {api_name: last_name, type: text, max_length: 80}
      - {api_name: email, type: email, max_length: 100}
      - {api_name: dob, type: date}
      - {api_name: gender, type: picklist, picklist_values: [M, F, U]}
      - {api_name: status, type: picklist, picklist_values: [Active, Prospect, Referral, Deceased]}
      - {api_name: clinic_id, type: lookup, lookup_targets: [clinics]}
      - {api_name: notes, type: textarea, max_length: 500}
      - {api_name: vip, type: boolean}
      - {api_name: created_at, type: datetime}
      - {api_name: appointments, type: array, item_object: patients.appointments}
  - api_name: patients.appointments
    key: id
    fields:
      - {api_name: id, type: id}
      - {api_name: start, type: datetime}
      - {api_name: status, type: picklist, picklist_values: [Booked, DNA, Complete]}
  - api_name: clinics
    key: id
    fields:
      - {api_name: id, type: id}
      - {api_name: name, type: text, max_length: 120}
  - api_name: documents
    key: id
    fields:
      - {api_name: id, type: id}
      - {api_name: patient_id, type: lookup, lookup_targets: [patients]}
      - {api_name: path, type: text, max_length: 255}
"""

HEADER = 'migration "example"\nsource clinic\ntarget zoho\n'
SF_HEADER = 'migration "example"\nsource clinic\ntarget salesforce\n'

# An org snapshot in Zoho's own metadata format (`fmap schema pull` output): Owner made mandatory.
_OWNER_REQUIRED = ('{"objects": {"Contacts": {"fields": {"fields": [\n'
                   '  {"api_name": "Owner", "data_type": "ownerlookup", "system_mandatory": true}\n'
                   ']}}}}\n')


@dataclass(frozen=True)
class Case:
    code: str
    title: str  # what the example shows (test id and doc heading)
    wrong: str  # the whole .fmap, with the mistake
    right: str  # the same, fixed: no diagnostic with this code
    at: str  # "line:col" of the diagnostic in `wrong`
    hint: str  # a piece of its hint
    wrong_files: dict[str, str] = field(default_factory=dict)  # files next to the .fmap
    right_files: dict[str, str] | None = None  # None: the same as wrong_files

    def files(self, which: str) -> dict[str, str]:
        extra = self.wrong_files if which == "wrong" or self.right_files is None \
            else self.right_files
        return {"schemas/clinic.yaml": CLINIC_YAML, **extra}

    @property
    def id(self) -> str:
        return f"{self.code}-{self.title.replace(' ', '_')}"


def _contacts(body: str, header: str = HEADER) -> str:
    return header + "\nmap patients -> Contacts {\n  key id\n" + body + "}\n"


CASES: list[Case] = [
    Case("FM300", "misspelt dialect",
         'migration "example"\nsource clinic\ntarget zohoo\n',
         'migration "example"\nsource clinic\ntarget zoho\n',
         "3:8", "did you mean `zoho`?"),
    Case("FM301", "malformed org snapshot",
         'migration "example"\nsource clinic\ntarget zoho "org/zoho.json"\n',
         'migration "example"\nsource clinic\ntarget zoho "org/zoho.json"\n',
         "3:1", "$.objects[0].fields[0].type",
         wrong_files={"org/zoho.json": '{"system": "zoho", "objects": [{"api_name": "Contacts", '
                                       '"fields": [{"api_name": "NHS_Number", "type": "txt"}]}]}\n'},
         right_files={"org/zoho.json": '{"system": "zoho", "objects": [{"api_name": "Contacts", '
                                       '"fields": [{"api_name": "NHS_Number", "type": "text"}]}]}\n'}),
    Case("FM302", "source without a schema",
         'migration "example"\nsource pms\ntarget zoho\n',
         'migration "example"\nsource pms "schemas/clinic.yaml"\ntarget zoho\n',
         "2:1", "schemas/pms.yaml"),
    Case("FM303", "unknown source object",
         HEADER + "\nmap patient -> Contacts {\n  key id\n  Last_Name = last_name\n}\n",
         HEADER + "\nmap patients -> Contacts {\n  key id\n  Last_Name = last_name\n}\n",
         "5:5", "did you mean `patients`?"),
    Case("FM304", "unknown source field",
         _contacts("  Last_Name = last_nme\n"),
         _contacts("  Last_Name = last_name\n"),
         "7:15", "did you mean `last_name`?"),
    Case("FM305", "unknown target object",
         HEADER + "\nmap patients -> Contact {\n  key id\n  Last_Name = last_name\n}\n",
         HEADER + "\nmap patients -> Contacts {\n  key id\n  Last_Name = last_name\n}\n",
         "5:17", "did you mean `Contacts`?"),
    Case("FM306", "unknown target field",
         _contacts("  Last_Name  = last_name\n  First_Nmae = first_name\n"),
         _contacts("  Last_Name  = last_name\n  First_Name = first_name\n"),
         "8:3", "did you mean `First_Name`?"),
    Case("FM307", "a date into a boolean",
         _contacts("  Last_Name     = last_name\n  Email_Opt_Out = dob\n"),
         _contacts("  Last_Name     = last_name\n  Date_of_Birth = dob\n"),
         "8:19", "value | boolean"),
    Case("FM308", "required field never assigned",
         _contacts("  First_Name = first_name\n"),
         _contacts("  First_Name = first_name\n  Last_Name  = last_name\n"),
         "5:17", "Last_Name = ..."),
    Case("FM309", "value-map output not in the picklist",
         HEADER + '\nvaluemap salutation {\n  "M" -> "Mr"\n  "F" -> "Ms."\n  "U" -> null\n  _ -> null\n}\n'
         + "\nmap patients -> Contacts {\n  key id\n  Last_Name  = last_name\n"
           "  Salutation = gender | salutation\n}\n",
         HEADER + '\nvaluemap salutation {\n  "M" -> "Mr."\n  "F" -> "Ms."\n  "U" -> null\n  _ -> null\n}\n'
         + "\nmap patients -> Contacts {\n  key id\n  Last_Name  = last_name\n"
           "  Salutation = gender | salutation\n}\n",
         "6:10", 'did you mean "Mr."?'),
    Case("FM310", "value map misses source codes",
         HEADER + '\nvaluemap vip_source {\n  "Active" -> "Partner"\n  _ -> null\n}\n'
         + "\nmap patients -> Contacts {\n  key id\n  Last_Name   = last_name\n"
           "  Lead_Source = status | vip_source\n}\n",
         HEADER + '\nvaluemap vip_source {\n  "Active" -> "Partner"\n  "Prospect", "Referral" -> '
                  '"External Referral"\n  "Deceased" -> null\n  _ -> null\n}\n'
         + "\nmap patients -> Contacts {\n  key id\n  Last_Name   = last_name\n"
           "  Lead_Source = status | vip_source\n}\n",
         "13:26", "_ -> null"),
    Case("FM311", "value-map key no source code has",
         HEADER + '\nvaluemap appt {\n  "Booked" -> "Not Started"\n  "DNA" -> "Deferred"\n'
                  '  "Completed" -> "Completed"\n  _ -> error\n}\n'
         + "\nmap patients -> Contacts {\n  key id\n  Last_Name = last_name\n}\n"
           "\nmap patients.appointments[] -> Tasks {\n  key id\n  Subject = \"Visit\"\n"
           "  Status  = status | appt\n  Who_Id  = ref(Contacts, parent.id)\n}\n",
         HEADER + '\nvaluemap appt {\n  "Booked" -> "Not Started"\n  "DNA" -> "Deferred"\n'
                  '  "Complete" -> "Completed"\n  _ -> error\n}\n'
         + "\nmap patients -> Contacts {\n  key id\n  Last_Name = last_name\n}\n"
           "\nmap patients.appointments[] -> Tasks {\n  key id\n  Subject = \"Visit\"\n"
           "  Status  = status | appt\n  Who_Id  = ref(Contacts, parent.id)\n}\n",
         "8:3", 'did you mean "Complete"?'),
    Case("FM312", "source text longer than the target field",
         _contacts("  Last_Name      = last_name\n  Mailing_Street = notes\n"),
         _contacts("  Last_Name      = last_name\n  Mailing_Street = notes | truncate(250)\n"),
         "8:20", "truncate(250)"),
    Case("FM313", "audit field without the permission",
         _contacts("  LastName    = last_name\n  CreatedDate = created_at\n",
                   header=SF_HEADER).replace("Contacts", "Contact"),
         _contacts("  LastName    = last_name\n  CreatedDate = created_at\n",
                   header=SF_HEADER.replace("salesforce", "salesforce(audit_fields=true)")
                   ).replace("Contacts", "Contact"),
         "8:3", "Set Audit Fields upon Record Creation"),
    Case("FM314", "ref() to the wrong map",
         HEADER + "\nmap clinics -> Accounts {\n  key id\n  Account_Name = name\n}\n"
         + "\nmap patients -> Contacts {\n  key id\n  Last_Name    = last_name\n"
           "  Account_Name = ref(Contacts, clinic_id)\n}\n",
         HEADER + "\nmap clinics -> Accounts {\n  key id\n  Account_Name = name\n}\n"
         + "\nmap patients -> Contacts {\n  key id\n  Last_Name    = last_name\n"
           "  Account_Name = ref(Accounts, clinic_id)\n}\n",
         "13:22", "ref(Accounts, ...)"),
    Case("FM315", "custom field without the Salesforce suffix",
         SF_HEADER + "\nextend Contact {\n  NHS_Number text(10)\n}\n",
         SF_HEADER + "\nextend Contact {\n  NHS_Number__c text(10)\n}\n",
         "6:3", "NHS_Number__c"),
    Case("FM316", "owner required, no owners policy",
         'migration "example"\nsource clinic\ntarget zoho "org/zoho.json"\n'
         "\nmap patients -> Contacts {\n  key id\n  Last_Name = last_name\n}\n",
         'migration "example"\nsource clinic\ntarget zoho "org/zoho.json"\n'
         'owners by email else reject\n'
         "\nmap patients -> Contacts {\n  key id\n  Last_Name = last_name\n"
         "  Owner     = owner(email)\n}\n",
         "5:17", "owners by email",
         wrong_files={"org/zoho.json": _OWNER_REQUIRED}),
    Case("FM317", "attachment without a size limit",
         _contacts("  Last_Name = last_name\n")
         + "\nmap documents -> Attachments {\n  key id\n  File_Name = path\n"
           "  Parent_Id = ref(Contacts, patient_id)\n  attach path\n}\n",
         _contacts("  Last_Name = last_name\n")
         + "\nmap documents -> Attachments {\n  key id\n  File_Name = path\n"
           "  Parent_Id = ref(Contacts, patient_id)\n  attach path limit 25MB oversize quarantine\n}\n",
         "14:3", "limit 25MB oversize quarantine"),
    Case("FM318", "overlapping where branches",
         HEADER + '\nmap patients -> Leads where status in ["Prospect", "Referral"] {\n'
                  "  key id\n  Last_Name = last_name\n}\n"
                  '\nmap patients -> Leads as referrals where status == "Referral" {\n'
                  "  key id\n  Last_Name = last_name\n}\n"
                  "\nmap patients -> Contacts otherwise {\n  key id\n  Last_Name = last_name\n}\n",
         HEADER + '\nmap patients -> Leads where status == "Prospect" {\n'
                  "  key id\n  Last_Name = last_name\n}\n"
                  '\nmap patients -> Leads as referrals where status == "Referral" {\n'
                  "  key id\n  Last_Name = last_name\n}\n"
                  "\nmap patients -> Contacts otherwise {\n  key id\n  Last_Name = last_name\n}\n",
         "10:36", "exclusive"),
    Case("FM319", "where branches miss source codes",
         HEADER + '\nmap patients -> Leads where status == "Prospect" {\n'
                  "  key id\n  Last_Name = last_name\n}\n"
                  '\nmap patients -> Contacts where status == "Active" {\n'
                  "  key id\n  Last_Name = last_name\n}\n",
         HEADER + '\nmap patients -> Leads where status in ["Prospect", "Referral"] {\n'
                  "  key id\n  Last_Name = last_name\n}\n"
                  '\nmap patients -> Contacts where status in ["Active", "Deceased"] {\n'
                  "  key id\n  Last_Name = last_name\n}\n",
         "10:26", "otherwise"),
    Case("FM320", "unknown vendor field type",
         'migration "example"\nsource clinic\ntarget zoho "org/zoho.json"\n',
         'migration "example"\nsource clinic\ntarget zoho "org/zoho.json"\n',
         "3:1", "not type-checked",
         wrong_files={"org/zoho.json": '{"objects": {"Contacts": {"fields": {"fields": [\n'
                                       '  {"api_name": "Tooth_Chart", "data_type": "tooth_chart"}\n'
                                       ']}}}}\n'},
         right_files={"org/zoho.json": '{"objects": {"Contacts": {"fields": {"fields": [\n'
                                       '  {"api_name": "Tooth_Chart", "data_type": "textarea"}\n'
                                       ']}}}}\n'}),
    Case("FM401", "lookup cycle through the keys",
         HEADER + "\nmap clinics -> Accounts {\n  key ref(Contacts, id)\n  Account_Name = name\n}\n"
         + "\nmap patients -> Contacts {\n  key ref(Accounts, clinic_id)\n"
           "  Last_Name = last_name\n}\n",
         HEADER + "\nmap clinics -> Accounts {\n  key id\n  Account_Name = name\n}\n"
         + "\nmap patients -> Contacts {\n  key id\n  Last_Name    = last_name\n"
           "  Account_Name = ref(Accounts, clinic_id)\n}\n",
         "6:11", "deferred",
         ),
]
