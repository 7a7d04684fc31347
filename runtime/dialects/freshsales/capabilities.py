"""Freshsales capabilities (API_NOTES.md section 3)."""

from __future__ import annotations

from runtime.dialects.base import PlanLimits, RateLimit

BATCH_SIZE = 1  # synchronous writes are single-record
BULK = ("POST /api/<entity>/bulk_upsert: up to 100 records per request, async (poll "
        "GET /api/job_statuses/{id}); per-record failure format unverified")
ATTACHMENT_LIMIT_BYTES = 150 * 1024 * 1024
ID_FORMAT = r"^\d+$"
# The ``name`` field of a custom module, as the emulator creates it (a text field: 255)
CUSTOM_NAME_MAX_LENGTH = 255

RATE_LIMIT = RateLimit(
    kind="requests_hour",
    plans={
        "free": PlanLimits(per_hour=1_000),
        "growth": PlanLimits(per_hour=1_000),
        "pro": PlanLimits(per_hour=2_000),
        "enterprise": PlanLimits(per_hour=5_000),
        "legacy_blossom": PlanLimits(per_hour=1_000, per_minute=400),
        "legacy_garden": PlanLimits(per_hour=1_000, per_minute=400),
        "legacy_estate": PlanLimits(per_hour=2_000, per_minute=400),
        "legacy_forest": PlanLimits(per_hour=5_000, per_minute=400),
    },
    default_plan="growth",
    write_cost="1 request per call (single record, or up to 100 via bulk_upsert)",
    exhausted_status=429,
    notes="per account, all users; rate-limit headers unverified (Freshdesk-style X-RateLimit-* "
          "and Retry-After may be absent)",
)

_AUDIT_HINT = "Freshsales sets this itself and the API does not accept it; keep the source value " \
              "in a custom field"
AUDIT_FIELDS = {"*": {name: _AUDIT_HINT for name in ("created_at", "updated_at")}}
OWNER_FIELD = {"*": "owner_id", "Note": "", "Document": "", "User": "", "Appointment": ""}
# Upsert identifiers: emails, mobile_number, or a unique custom field (cf_...).
EXTERNAL_ID_FIELD = "cf_{name}"
