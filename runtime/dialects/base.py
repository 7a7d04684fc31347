"""The :class:`Dialect` base: everything specific to one CRM, declared as data.

A dialect is one folder under ``runtime/dialects/`` (``zoho``, ``salesforce``, ``freshsales``,
``pipedrive``) holding:

- ``__init__.py``        the dialect instance (``DIALECT``), registered by name;
- ``capabilities.py``    batch size, upsert, bulk API, attachment limit, rate-limit model, ids, audit;
- ``metadata.py``        the loader from that vendor's own metadata format into :mod:`runtime.schema`;
- ``naming.py``          the vendor's naming rules for custom modules/objects and fields;
- ``standard_schema.json`` the bundled standard objects (a :class:`SystemSchema`, ``kind: target``).

- ``client.py``          the httpx connector; ``sandbox.py`` the local emulator (an ASGI app).

A folder holds everything vendor-specific (envelopes, error shapes, limits, quirks). Plumbing that
is the same for every CRM lives beside it, named for what it holds: ``_asgi.py`` (the emulators'
ASGI request/response handling and the in-process transport), ``_bodies.py`` (the emulators'
JSON answers, JSON-object bodies and multipart uploads), ``_options.py`` (sandbox options, read
alike from text and code), ``_http.py`` (the connectors' target hosts, transport errors, JSON
bodies, lifecycle), ``_oauth.py`` (the refresh-token flow's shared half), ``_faults.py`` (fault
plans from option text) and ``_loader.py`` (metadata loading).

Capabilities are plain attributes so the compiler and the planner can read them (an API-call
estimate is ``records / batch_size`` calls priced by ``rate_limit``), and a CRM that cannot do a
thing says so (``upsert == "none"``) instead of the compiler emitting wrong code.

Module-level hooks in a dialect's ``__init__.py`` (found by name, like ``open_sandbox`` and
``open_client`` in :mod:`runtime.targets`; a dialect without one says it cannot do that):

- ``open_client(uri, options)`` / ``open_sandbox(schema, path, users, options)``: the destination
  for ``<dialect>://...`` and ``sandbox:<dialect>`` targets (:mod:`runtime.targets`).
- ``serve_sandbox(schema, path, users, token, options) -> ServedSandbox``: the dialect's
  emulator as an ASGI app for ``fmap sandbox serve --dialect <name>`` (loopback HTTP); ``token``
  is the bearer the app must demand (``None``: generate one); ``options`` carries the CLI's
  ``--faults``, ``--external-id-field`` and dialect limit options as text.
- ``emit_schema_package(changes, out_dir) -> list[Path]``: for a CRM whose schema changes go
  through an admin deployment instead of an API call (Salesforce's Metadata API), write that
  package for the admin (``fmap schema apply --emit package DIR``).

Client methods ``fmap schema`` uses (on each dialect's httpx client, so they work the same
against the real API, a loopback sandbox and ``sandbox:<dialect>``):

- ``metadata_bundle(objects) -> payload``: the vendor-shaped metadata of those objects, in the
  form this dialect's ``load_metadata`` accepts (``fmap schema pull`` saves it verbatim). An
  object the org does not have is left out of the payload, not an error (``fmap schema apply``
  treats it as missing); any other refusal (a bad token, no permission) still raises.
- ``apply_schema_changes(changes) -> list[dict]``: create the custom objects/fields in
  ``changes`` (``PLAN.schema_changes`` entries the org lacks, objects first), one result per
  change ``{"object", "field", "status": "created" | "failed", "message"}``; raise
  :class:`UnsupportedByDialect` for what the vendor cannot do through its API.

Loader results: ``load_metadata`` returns a :class:`SystemSchema`; non-fatal findings (unknown
vendor types, picklists without values...) are appended to the optional ``warnings`` list the
caller passes in, as :class:`runtime.schema.io.SchemaWarning`. Malformed payloads raise
:class:`runtime.schema.io.SchemaLoadError` with the JSON path of the bad value.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from types import ModuleType
from typing import Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PField

from runtime.schema.io import SchemaLoadError, SchemaWarning, schema_from_data
from runtime.schema.model import SystemSchema

__all__ = [
    "Dialect",
    "RateLimit",
    "PlanLimits",
    "NameKind",
    "UnsupportedByDialect",
    "ServedSandbox",
]

NameKind = Literal["module", "field"]


class UnsupportedByDialect(ValueError):
    """The CRM cannot do what was asked (e.g. a custom object in Pipedrive)."""

    def __init__(self, dialect: str, what: str) -> None:
        self.dialect = dialect
        self.what = what
        super().__init__(f"{dialect}: {what}")


@dataclass
class ServedSandbox:
    """What a dialect's ``serve_sandbox`` hook returns to ``fmap sandbox serve``."""

    app: Any  # the ASGI application (uvicorn serves it)
    token: str  # the credential the app demands
    # environment variables a client needs to reach it, e.g. {"SF_ACCESS_TOKEN": token};
    # printed once on start (they hold the sandbox's own throwaway token, never a real one)
    client_env: dict[str, str]
    base_path: str  # the API root, e.g. "/crm/v8", for the start-up message
    target_scheme: str  # ``fmap run --target <scheme>://127.0.0.1:PORT``
    close: Any = None  # callable releasing the store, or None


class PlanLimits(BaseModel):
    """Limits of one plan tier. Unused members stay ``None``.

    - ``base`` + ``per_user`` (capped by ``max``): Zoho credits / Salesforce requests per 24 h.
    - ``per_hour``: Freshsales requests per hour; ``per_minute`` its legacy per-minute cap.
    - ``multiplier``: Pipedrive token budget = 30,000 x multiplier x seats per day.
    - ``burst`` (+ ``burst_window_s``): requests allowed per short window (Pipedrive 2 s).
    - ``concurrency``: concurrent requests for this tier, when it differs by plan.
    """

    model_config = ConfigDict(extra="forbid")

    base: int | None = None
    per_user: int | None = None
    max: int | None = None
    per_hour: int | None = None
    per_minute: int | None = None
    multiplier: int | None = None
    burst: int | None = None
    burst_window_s: float | None = None
    concurrency: int | None = None


class RateLimit(BaseModel):
    """A CRM's rate-limit model (API_NOTES.md per vendor, section "Rate limits")."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["credits_24h", "requests_24h", "requests_hour", "token_budget"]
    plans: dict[str, PlanLimits] = PField(default_factory=dict)
    default_plan: str | None = None
    concurrency: int | None = None  # default concurrency when plans do not say
    write_cost: str | None = None  # how a write is priced, human-readable
    exhausted_status: int = 429  # HTTP status when the budget is spent (Salesforce: 403)
    notes: str | None = None


@dataclass(frozen=True, eq=False)
class Dialect:
    """One CRM. Subclasses (one per folder) implement the vendor hooks."""

    name: str
    label: str
    batch_size: int  # records per synchronous write call
    upsert: Literal["native", "none"]
    bulk: str | None  # the async bulk API, described; None if there is none
    attachment_limit_bytes: int | None  # None: not documented
    rate_limit: RateLimit
    id_format: str  # regex matching a record id
    # object -> {field: hint}; fields that are read-only unless the org allows setting them
    audit_fields: dict[str, dict[str, str]] = field(default_factory=dict)
    # object -> owner field; "*" is the default for objects not listed
    owner_field: dict[str, str] = field(default_factory=dict)
    # how an external-id field is named/declared in this CRM (a template over the field name)
    external_id_field: str = "{name}"
    metadata_format: str = ""  # the vendor endpoint load_metadata understands, for docs and errors
    # the longest record name a new custom module/object takes (its ``custom_name_field``); the
    # checks and the dialect's emulator both read it, so a name the checks pass is one it stores
    custom_name_max_length: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    # ---- vendor hooks --------------------------------------------------------------------------
    # Each subclass names its own folder's modules (class attributes, not dataclass fields): the
    # loader of the vendor's metadata format (``metadata.py``, wrapped in ``staticmethod``) and
    # the naming rules (the ``naming.py`` module, with ``check_custom_name(kind, name)`` and
    # ``custom_api_name(label_or_name, kind)``). The methods below only delegate, so the vendor
    # logic stays in the dialect's folder.
    metadata_loader: ClassVar[Callable[..., SystemSchema] | None] = None
    naming_rules: ClassVar[ModuleType | None] = None

    def load_metadata(
        self,
        payload: Any,
        *,
        source_name: str,
        object_name: str | None = None,
        warnings: list[SchemaWarning] | None = None,
    ) -> SystemSchema:
        """Convert the vendor's own metadata ``payload`` (parsed JSON) into a :class:`SystemSchema`.

        ``payload`` is either one object's metadata response (``object_name`` names the object
        when the response itself does not), or a bundle ``{"objects": {name: response, ...}}``
        as ``fmap schema pull`` saves it. Raises :class:`SchemaLoadError`; non-fatal findings are
        appended to ``warnings``.
        """
        if self.metadata_loader is None:
            raise NotImplementedError(f"{self.name}: no metadata loader")
        return self.metadata_loader(payload, source_name=source_name, object_name=object_name,
                                    warnings=warnings)

    def check_custom_name(self, kind: NameKind, name: str) -> list[str]:
        """Problems with ``name`` as the API name of a new custom module/object or field."""
        if self.naming_rules is None:
            raise NotImplementedError(f"{self.name}: no naming rules")
        return self.naming_rules.check_custom_name(kind, name)

    def custom_api_name(self, label_or_name: str, kind: NameKind) -> str:
        """The API name the CRM gives a new custom module/field with this label."""
        if self.naming_rules is None:
            raise NotImplementedError(f"{self.name}: no naming rules")
        return self.naming_rules.custom_api_name(label_or_name, kind)

    @classmethod
    def from_capabilities(cls, caps: ModuleType, **fields: Any) -> Self:
        """The dialect whose capability fields are the constants of its ``capabilities.py``
        (``BATCH_SIZE``, ``BULK``, ``ATTACHMENT_LIMIT_BYTES``, ``RATE_LIMIT``, ``ID_FORMAT``,
        ``AUDIT_FIELDS``, ``OWNER_FIELD``, ``EXTERNAL_ID_FIELD``, ``CUSTOM_NAME_MAX_LENGTH``), so that module is the one place
        each is declared; ``fields`` gives the rest (``name``, ``label``, ``upsert``...)."""
        declared = {f: getattr(caps, const) for f, const in _CAPABILITY_CONSTANTS.items()}
        return cls(**declared, **fields)

    # ---- shared behaviour ---------------------------------------------------------------------

    def standard_schema(self) -> SystemSchema:
        """The bundled standard objects (a fresh copy: callers may mutate it)."""
        return _standard_schema(self.name).model_copy(deep=True)

    def owner_field_for(self, object_name: str) -> str | None:
        return self.owner_field.get(object_name, self.owner_field.get("*"))

    # The record-name field the CRM gives every custom module/object it creates (a class
    # attribute each dialect sets, not a dataclass field).
    custom_name_field: ClassVar[str | None] = None

    def custom_object_fields(self, object_name: str) -> list:
        """Fields the CRM adds to every custom module/object: its id, its owner and (where the
        CRM has one) its record name. The compiler's checks and the runtime's schema setup both
        use this, so a field the checks accept on a `create object` exists when records load."""
        from runtime.schema.model import FieldSchema, FieldType

        fields = [FieldSchema(api_name="id", type=FieldType.id, read_only=True)]
        owner = self.owner_field_for(object_name)
        if owner:
            fields.append(FieldSchema(api_name=owner, type=FieldType.owner,
                                      lookup_targets=["Users"]))
        if self.custom_name_field:
            fields.append(FieldSchema(api_name=self.custom_name_field, type=FieldType.text,
                                      max_length=self.custom_name_max_length))
        return fields

    def audit_hint(self, object_name: str, field_name: str) -> str | None:
        """The vendor hint for writing an audit field, or None if it is not an audit field."""
        for key in (object_name, "*"):
            hint = self.audit_fields.get(key, {}).get(field_name)
            if hint:
                return hint
        return None

    def external_id_name(self, name: str) -> str:
        return self.external_id_field.format(name=name)

    def __repr__(self) -> str:
        return f"<Dialect {self.name}>"


# Dialect field -> the constant of ``<dialect>/capabilities.py`` that declares it
_CAPABILITY_CONSTANTS = {
    "batch_size": "BATCH_SIZE",
    "bulk": "BULK",
    "attachment_limit_bytes": "ATTACHMENT_LIMIT_BYTES",
    "rate_limit": "RATE_LIMIT",
    "id_format": "ID_FORMAT",
    "audit_fields": "AUDIT_FIELDS",
    "owner_field": "OWNER_FIELD",
    "external_id_field": "EXTERNAL_ID_FIELD",
    "custom_name_max_length": "CUSTOM_NAME_MAX_LENGTH",
}


@cache
def _standard_schema(name: str) -> SystemSchema:
    ref = resources.files(f"runtime.dialects.{name}").joinpath("standard_schema.json")
    source = f"runtime/dialects/{name}/standard_schema.json"
    try:
        data = json.loads(ref.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SchemaLoadError(source, "$", "bundled standard schema is missing") from None
    except json.JSONDecodeError as exc:
        raise SchemaLoadError(source, "$", f"invalid JSON at line {exc.lineno}: {exc.msg}") from None
    return schema_from_data(data, source_name=source)
