"""Zoho CRM capabilities (API_NOTES.md section 1)."""

from __future__ import annotations

from runtime.dialects.base import PlanLimits, RateLimit

BATCH_SIZE = 100  # insert / update / upsert / delete per call
BULK = "Bulk Write API (async CSV upload, POST /crm/bulk/v8/write; 500 credits per job)"
ATTACHMENT_LIMIT_BYTES = 100 * 1024 * 1024  # "Maximum allowed file size: 100 MB" (v2 doc)
ID_FORMAT = r"^\d{15,19}$"  # 18-19 digit strings in practice
# The record name (``Name``) of a custom module. Zoho's docs we could search state 255 for a
# single-line text field but give no figure for a custom module's Name field; the emulator has
# refused longer than 120 since it was written, so 120 stays [unverified against the live API].
CUSTOM_NAME_MAX_LENGTH = 120

RATE_LIMIT = RateLimit(
    kind="credits_24h",
    plans={
        "free": PlanLimits(base=5_000, concurrency=5),
        "standard": PlanLimits(base=50_000, per_user=250, max=100_000, concurrency=10),
        "professional": PlanLimits(base=50_000, per_user=500, max=3_000_000, concurrency=15),
        "enterprise": PlanLimits(base=50_000, per_user=1_000, max=5_000_000, concurrency=20),
        "ultimate": PlanLimits(base=50_000, per_user=2_000, max=None, concurrency=25),
    },
    default_plan="professional",
    concurrency=10,  # sub-concurrency for heavy APIs, every edition
    write_cost="1 credit per 10 records (ceil) for insert/update/upsert; most other calls 1",
    exhausted_status=429,
    notes="429 TOO_MANY_REQUESTS for credits and for concurrency; X-API-CREDITS-REMAINING "
          "header once usage >= 50%; no Retry-After",
)

_AUDIT_HINT = ("Zoho stamps this itself; the record APIs treat it as read-only. Keep the source "
               "value in a custom field, or use Zoho's data-migration import to preserve it")
AUDIT_FIELDS = {"*": {name: _AUDIT_HINT for name in
                      ("Created_Time", "Modified_Time", "Created_By", "Modified_By")}}
OWNER_FIELD = {"*": "Owner", "Notes": "Owner", "Attachments": "Owner", "Users": ""}
# External ids: a custom field flagged "External" in the field settings; upsert then uses the
# X-EXTERNAL: {Module}.{Field} header.
EXTERNAL_ID_FIELD = "{name}"
