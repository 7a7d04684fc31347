"""Pipedrive capabilities (API_NOTES.md section 4)."""

from __future__ import annotations

from runtime.dialects.base import PlanLimits, RateLimit

BATCH_SIZE = 1  # no batch writes for core entities
BULK = None
# Not documented in the specs or docs we have (API_NOTES.md 4.6); the migration specifications
# assume 25 MB, which the preflight may apply as a policy. None = "no documented limit".
ATTACHMENT_LIMIT_BYTES = None
ID_FORMAT = r"^(\d+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$"  # leads: UUIDs
CUSTOM_NAME_MAX_LENGTH = None  # no custom objects (no record-name field to bound)

RATE_LIMIT = RateLimit(
    kind="token_budget",
    plans={
        "lite": PlanLimits(base=30_000, multiplier=1, burst=20, burst_window_s=2),
        "growth": PlanLimits(base=30_000, multiplier=2, burst=40, burst_window_s=2),
        "premium": PlanLimits(base=30_000, multiplier=5, burst=100, burst_window_s=2),
        "ultimate": PlanLimits(base=30_000, multiplier=7, burst=120, burst_window_s=2),
    },
    default_plan="growth",
    write_cost="v2 create/update 5 tokens, get 1, list 10, delete 3, search 20 (v1 doubles); "
               "daily budget = base x multiplier x seats",
    exhausted_status=429,
    notes="burst per API token per rolling 2 s (OAuth apps 4x); search 10 per 2 s; headers "
          "x-ratelimit-limit/remaining/reset, x-daily-requests-left; repeated 429s may get a 403 "
          "Cloudflare HTML page",
)

AUDIT_FIELDS = {"*": {
    "add_time": "settable on create only (v2 POST body add_time, RFC 3339); not on update",
    "update_time": "Pipedrive sets this itself; keep the source value in a custom field",
}}
OWNER_FIELD = {"*": "owner_id", "Activity": "owner_id", "Note": "user_id", "File": "user_id",
               "User": ""}
# No external ids: a custom field holds the source id and search (exact_match) finds the record.
EXTERNAL_ID_FIELD = "{name}"
