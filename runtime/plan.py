"""The runtime's view of a compiled mapping: what a generated module's ``PLAN`` holds.

Generated modules build these objects at import time; the executor reads them and nothing else of
the compiler. Placeholders (``Ref``, ``Owner``) are values the transforms put into output records
where the destination id is only known at load time (after the referenced record, or the user
list, has been read).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Ref", "Owner", "Attachment", "SkipRule", "SplitSpec", "AttachSpec", "Step", "Plan",
    "UnmappedValue", "QuarantineRecord", "locate",
]


class Ref:
    """``ref(Contacts | Leads, key)``: resolved through the id map at load time; the first map
    (in order) that loaded ``key`` wins. ``key`` None means "no reference" (the field is cleared)."""

    __slots__ = ("maps", "key")

    def __init__(self, maps: tuple[str, ...], key: str | None) -> None:
        self.maps = maps
        self.key = key

    def __repr__(self) -> str:
        return f"Ref({self.maps!r}, {self.key!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ref) and (self.maps, self.key) == (other.maps, other.key)

    def __hash__(self) -> int:
        return hash((self.maps, self.key))


class Owner:
    """``owner(email)``: a destination user matched by email under the mapping's owners policy."""

    __slots__ = ("email",)

    def __init__(self, email: Any) -> None:
        self.email = email

    def __repr__(self) -> str:
        return f"Owner({self.email!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Owner) and self.email == other.email

    def __hash__(self) -> int:
        return hash(self.email)


@dataclass(frozen=True)
class Attachment:
    path: Any
    name: Any


class UnmappedValue(ValueError):
    """A value a value map does not list, under the `error` or `quarantine` policy. The message
    names the value map, never the value (it may be patient data)."""

    def __init__(self, valuemap: str, value: Any, quarantine: bool) -> None:
        self.valuemap = valuemap
        self.value = value
        self.quarantine = quarantine
        super().__init__(f"value not in value map `{valuemap}`")


class QuarantineRecord(Exception):
    """Raised by generated code to quarantine the current record with a reason."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class SkipRule:
    predicate: Callable[..., bool]
    reason: str
    line: int


@dataclass(frozen=True)
class SplitSpec:
    field: str
    max: int
    prefix: str


@dataclass(frozen=True)
class AttachSpec:
    limit_bytes: int | None
    oversize: str  # skip | fail | quarantine
    line: int


@dataclass(frozen=True)
class Step:
    """One object map or merge, in load order.

    ``transform(rec, parents, P)`` returns the output record (target field -> value, with ``Ref``/
    ``Owner`` placeholders; ``"$attach"`` holds an ``Attachment``). For merges, ``transform(group,
    P)`` gets the list of child records of one parent and ``key(rec, parents, P)`` gives each child's
    parent key. ``route`` is the `where` predicate; ``otherwise`` marks the fallback of a routing
    group (the records no `where` of ``route_group`` matched)."""

    name: str
    kind: str  # "map" | "merge"
    source: str  # root source object
    path: tuple[str, ...]  # nested arrays below the root, e.g. ("appointments",)
    target: str
    transform: Callable[..., Any]
    key: Callable[..., Any] | None
    line: int
    route: Callable[..., bool] | None = None
    route_group: str | None = None
    otherwise: bool = False
    skips: tuple[SkipRule, ...] = ()
    mode: str = "upsert"
    depends_on: tuple[str, ...] = ()
    deferred_fields: tuple[str, ...] = ()
    split: SplitSpec | None = None
    attach: AttachSpec | None = None
    sensitive: frozenset[str] = frozenset()
    fields: tuple[str, ...] = ()  # target fields assigned, in .fmap order
    field_lines: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    migration: str | None
    source: str | None
    target: str | None
    target_options: dict[str, Any]
    params: dict[str, Any]
    owners: dict[str, Any] | None  # {"by": "email", "fallback_param"/"fallback": ..., "reject": bool}
    steps: tuple[Step, ...]
    schema_changes: tuple[dict[str, Any], ...] = ()
    not_migrated: tuple[tuple[str, str], ...] = ()
    fmap_path: str = ""
    fmap_sha256: str = ""
    compiler_version: str = ""
    # per source object, from the source schema: {"key": field, "modified_at": field}, so the
    # runtime reads each object's key and change timestamp without the compiler
    source_config: dict[str, dict[str, Any]] = field(default_factory=dict)

    def step(self, name: str) -> Step:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(name)


def locate(exc: BaseException, module: Any) -> list[tuple[int, str]]:
    """Map an exception raised inside generated code to ``.fmap`` lines and rules, using the
    module's ``FMAP_LINES`` table (generated line -> (fmap line, rule)): one entry per frame of the
    generated module, outermost first. The first names the field being assigned
    (``Contacts.Gender``, line 38); the last the rule that failed (``valuemap gender``, line 10)."""
    table = getattr(module, "FMAP_LINES", None)
    filename = getattr(module, "__file__", None)
    if not table or filename is None:
        return []
    found: list[tuple[int, str]] = []
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename and tb.tb_lineno in table:
            found.append(table[tb.tb_lineno])
        tb = tb.tb_next
    return found
