"""Salesforce capabilities (API_NOTES.md section 2)."""

from __future__ import annotations

from runtime.dialects.base import PlanLimits, RateLimit

BATCH_SIZE = 200  # sObject Collections create/update/upsert/delete
BULK = ("Bulk API 2.0 ingest jobs (async CSV, 150 MB per upload, 10,000 records per internal "
        "batch); recommended above ~2,000 records")
ATTACHMENT_LIMIT_BYTES = 2 * 1024**3  # ContentVersion multipart; other blobs 500 MB
ID_FORMAT = r"^[A-Za-z0-9]{15}([A-Za-z0-9]{3})?$"
# The ``Name`` text field of a custom object (the emulator builds deployed objects through
# ``custom_object_fields``, so checks and emulator share it) [unverified against a live org]
CUSTOM_NAME_MAX_LENGTH = 255

RATE_LIMIT = RateLimit(
    kind="requests_24h",
    plans={
        "developer": PlanLimits(base=15_000, concurrency=5),
        "professional": PlanLimits(base=100_000, per_user=1_000, concurrency=25),
        "enterprise": PlanLimits(base=100_000, per_user=1_000, concurrency=25),
        "unlimited": PlanLimits(base=100_000, per_user=5_000, concurrency=25),
        "performance": PlanLimits(base=100_000, per_user=5_000, concurrency=25),
        "full_sandbox": PlanLimits(base=5_000_000, concurrency=25),
    },
    default_plan="enterprise",
    concurrency=25,  # concurrent long-running (>= 20 s) requests
    write_cost="1 request per sObject Collections call (up to 200 records)",
    exhausted_status=403,
    notes="403 REQUEST_LIMIT_EXCEEDED (not 429), no Retry-After; Sforce-Limit-Info: "
          "api-usage=x/y on every response",
)

_AUDIT_HINT = ("enable 'Set Audit Fields upon Record Creation' in Setup > User Interface and "
               "grant the 'Set Audit Fields upon Record Creation' permission to the migration "
               "user; settable on insert only")
AUDIT_FIELDS = {"*": {name: _AUDIT_HINT for name in
                      ("CreatedDate", "CreatedById", "LastModifiedDate", "LastModifiedById")}}
OWNER_FIELD = {"*": "OwnerId", "Note": "OwnerId", "ContentVersion": "OwnerId",
               "Attachment": "OwnerId", "User": "", "ContentNote": "OwnerId"}
# An external id is a custom field with externalId=true (Text/Number/Email), named like any
# custom field; upsert goes to PATCH /sobjects/{X}/{Field__c}/{value}.
EXTERNAL_ID_FIELD = "{name}__c"
