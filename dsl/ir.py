"""The typed IR of a .fmap file: one pydantic model per construct, every node with a span.

The IR is what the parser produces and what every later stage reads (resolution, checks, planning,
code generation, the formatter). It records what the file says, nothing inferred: names are not yet
bound to schemas, and missing, null and empty string stay distinct (``MissingLit``, ``NullLit``,
``StringLit("")``).

Each node has a ``kind`` tag so a JSON dump (``fmap compile --emit ir``, the IR snapshots) is
self-describing and unions discriminate without guessing.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from dsl.span import Span

__all__ = [
    "Node", "Name", "Expr", "StringLit", "IntLit", "DecimalLit", "BoolLit", "NullLit", "MissingLit",
    "DateLit", "DateTimeLit", "ListExpr", "PathExpr", "ParamRef", "KwArg", "Call", "Pipe", "RefExpr",
    "OwnerExpr", "BinOp", "UnaryOp", "CondExpr", "Comment", "MigrationDecl", "SourceDecl",
    "TargetDecl", "ImportDecl", "ParamDecl", "OwnersDecl", "ValueMapEntry", "UnmappedPolicy",
    "ValueMapDecl", "TypeSpec", "FieldDecl", "SchemaDecl", "SourcePath", "Route", "KeyStmt",
    "Assign", "SplitStmt", "AttachStmt", "SkipStmt", "SensitiveStmt", "ModeStmt", "Stmt",
    "ObjectMap", "MergeMap", "NotMigrated", "Given", "Expect", "TestDecl", "Decl", "Module",
    "LITERAL_KINDS",
]


class Node(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    span: Span


class Name(Node):
    """An identifier as written. ``quoted`` is true for backtick names (`First Name`)."""

    kind: Literal["name"] = "name"
    value: str
    quoted: bool = False


# ------------------------------------------------------------------------------------------ exprs


class StringLit(Node):
    kind: Literal["string"] = "string"
    value: str


class IntLit(Node):
    kind: Literal["int"] = "int"
    value: int


class DecimalLit(Node):
    """Kept as Decimal: money must never pass through float."""

    kind: Literal["decimal"] = "decimal"
    value: Decimal


class BoolLit(Node):
    kind: Literal["bool"] = "bool"
    value: bool


class NullLit(Node):
    kind: Literal["null"] = "null"


class MissingLit(Node):
    """`missing`: the field is absent (distinct from null and from "")."""

    kind: Literal["missing"] = "missing"


class DateLit(Node):
    kind: Literal["date"] = "date"
    value: str  # ISO YYYY-MM-DD


class DateTimeLit(Node):
    kind: Literal["datetime"] = "datetime"
    value: str  # ISO 8601, offset optional


class ListExpr(Node):
    kind: Literal["list"] = "list"
    items: list[Expr]


class PathExpr(Node):
    """A dotted path into the current record: ``email``, ``address.postcode``, ``phones[0]``,
    ``parent.id`` (array maps), ``group.balance`` (merges)."""

    kind: Literal["path"] = "path"
    parts: list[Name | int]

    @property
    def head(self) -> str:
        first = self.parts[0]
        return first.value if isinstance(first, Name) else str(first)

    def dotted(self) -> str:
        out = []
        for p in self.parts:
            out.append(f"[{p}]" if isinstance(p, int) else ("." if out else "") + p.value)
        return "".join(out)


class ParamRef(Node):
    kind: Literal["param"] = "param"
    name: str


class KwArg(Node):
    kind: Literal["kwarg"] = "kwarg"
    name: Name
    value: Expr


class Call(Node):
    kind: Literal["call"] = "call"
    func: Name
    args: list[Expr] = Field(default_factory=list)
    kwargs: list[KwArg] = Field(default_factory=list)


class Pipe(Node):
    """``value | func(args)``: the value becomes the first argument; ``func`` may also name a value
    map (``gender | gender_map``). Resolution decides which."""

    kind: Literal["pipe"] = "pipe"
    value: Expr
    func: Name
    args: list[Expr] = Field(default_factory=list)
    kwargs: list[KwArg] = Field(default_factory=list)
    has_parens: bool = False


class RefExpr(Node):
    """``ref(Contacts | Leads, patient_id)``: the destination id of the record that the named map(s)
    loaded for that source key, resolved through the id map at load time."""

    kind: Literal["ref"] = "ref"
    targets: list[Name]
    key: Expr


class OwnerExpr(Node):
    """``owner(practitioner_email)``: a destination user, resolved per the `owners` policy."""

    kind: Literal["owner"] = "owner"
    email: Expr


BinOpName = Literal[
    "+", "-", "*", "/", "%", "++", "==", "!=", "<", "<=", ">", ">=", "and", "or", "??", "in", "not in"
]


class BinOp(Node):
    kind: Literal["binop"] = "binop"
    op: BinOpName
    left: Expr
    right: Expr


class UnaryOp(Node):
    kind: Literal["unary"] = "unary"
    op: Literal["not", "-"]
    operand: Expr


class CondExpr(Node):
    kind: Literal["if"] = "if"
    cond: Expr
    then: Expr
    otherwise: Expr


Expr = Annotated[
    StringLit | IntLit | DecimalLit | BoolLit | NullLit | MissingLit | DateLit | DateTimeLit | ListExpr | PathExpr | ParamRef | Call | Pipe | RefExpr | OwnerExpr | BinOp | UnaryOp | CondExpr,
    Field(discriminator="kind"),
]

LITERAL_KINDS = frozenset(
    {"string", "int", "decimal", "bool", "null", "missing", "date", "datetime"}
)

# ------------------------------------------------------------------------------------ header decls


class Comment(Node):
    kind: Literal["comment"] = "comment"
    text: str  # without the leading '#'


class MigrationDecl(Node):
    kind: Literal["migration"] = "migration"
    title: str


class SourceDecl(Node):
    kind: Literal["source"] = "source"
    name: Name
    schema_path: str | None = None


class TargetDecl(Node):
    kind: Literal["target"] = "target"
    name: Name
    options: list[KwArg] = Field(default_factory=list)
    schema_path: str | None = None


class ImportDecl(Node):
    kind: Literal["import"] = "import"
    path: str


class ParamDecl(Node):
    kind: Literal["param_decl"] = "param_decl"
    name: Name
    default: Expr


class OwnersDecl(Node):
    """``owners by email else $fallback`` / ``owners by email else reject``."""

    kind: Literal["owners"] = "owners"
    by: Name
    reject: bool = False
    fallback: Expr | None = None


# -------------------------------------------------------------------------------------- value maps


class ValueMapEntry(Node):
    kind: Literal["vm_entry"] = "vm_entry"
    keys: list[Expr]  # literals
    value: Expr


class UnmappedPolicy(Node):
    kind: Literal["unmapped"] = "unmapped"
    policy: Literal["error", "passthrough", "quarantine", "default"]
    default: Expr | None = None


class ValueMapDecl(Node):
    kind: Literal["valuemap"] = "valuemap"
    name: Name
    entries: list[ValueMapEntry] = Field(default_factory=list)
    unmapped: UnmappedPolicy | None = None


# ---------------------------------------------------------------------------------- custom schema


class TypeSpec(Node):
    kind: Literal["type"] = "type"
    name: Name
    args: list[int | str] = Field(default_factory=list)  # text(10), decimal(16, 2), lookup(Contacts)


class FieldDecl(Node):
    kind: Literal["field_decl"] = "field_decl"
    name: Name
    type: TypeSpec
    label: str | None = None
    required: bool = False
    unique: bool = False
    external_id: bool = False
    sensitive: bool = False
    values: list[Expr] = Field(default_factory=list)  # picklist values


class SchemaDecl(Node):
    """``create module X { ... }`` (a new custom module/object) or ``extend Contacts { ... }``
    (custom fields on an existing object)."""

    kind: Literal["schema"] = "schema"
    action: Literal["module", "object", "extend"]
    name: Name
    label: str | None = None
    fields: list[FieldDecl] = Field(default_factory=list)


# ------------------------------------------------------------------------------------ object maps


class SourcePath(Node):
    """``patients`` or ``patients.appointments[]`` (one record per array element)."""

    kind: Literal["source_path"] = "source_path"
    parts: list[Name]

    @property
    def root(self) -> str:
        return self.parts[0].value

    @property
    def is_array(self) -> bool:
        return len(self.parts) > 1

    def dotted(self) -> str:
        return ".".join(p.value for p in self.parts)

    def display(self) -> str:
        return self.parts[0].value + "".join(f".{p.value}[]" for p in self.parts[1:])


class Route(Node):
    kind: Literal["route"] = "route"
    mode: Literal["where", "otherwise"]
    cond: Expr | None = None


class KeyStmt(Node):
    kind: Literal["key"] = "key"
    value: Expr


class Assign(Node):
    kind: Literal["assign"] = "assign"
    target: Name
    value: Expr


class SplitStmt(Node):
    kind: Literal["split"] = "split"
    target: Name
    max: int
    prefix: str | None = None


class AttachStmt(Node):
    kind: Literal["attach"] = "attach"
    path: Expr
    file_name: Expr | None = None
    limit_bytes: int | None = None
    limit_text: str | None = None  # as written, e.g. "25MB"
    oversize: Name | None = None  # skip | fail | quarantine


class SkipStmt(Node):
    kind: Literal["skip"] = "skip"
    cond: Expr
    reason: str | None = None


class SensitiveStmt(Node):
    kind: Literal["sensitive"] = "sensitive"
    fields: list[Name]


class ModeStmt(Node):
    kind: Literal["mode"] = "mode"
    mode: Name  # create | upsert | update


Stmt = Annotated[
    KeyStmt | Assign | SplitStmt | AttachStmt | SkipStmt | SensitiveStmt | ModeStmt,
    Field(discriminator="kind"),
]


class _MapBase(Node):
    source: SourcePath
    target: Name
    body: list[Stmt] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)  # comment lines directly above the map

    def stmts(self, cls: type) -> list:
        return [s for s in self.body if isinstance(s, cls)]

    @property
    def key(self) -> KeyStmt | None:
        keys = self.stmts(KeyStmt)
        return keys[0] if keys else None

    @property
    def assignments(self) -> list[Assign]:
        return self.stmts(Assign)


class ObjectMap(_MapBase):
    """``map source -> Target [as name] [where cond | otherwise] { ... }``."""

    kind: Literal["map"] = "map"
    alias: Name | None = None
    route: Route | None = None

    @property
    def name(self) -> str:
        """The map's name: what ``ref()`` and ``expect`` refer to."""
        return (self.alias or self.target).value


class MergeMap(_MapBase):
    """``merge children -> ParentMap by expr { ... }``: many:1, an update of an already-loaded
    parent record computed from each group of child records (``group`` is the list)."""

    kind: Literal["merge"] = "merge"
    by: Expr

    @property
    def name(self) -> str:
        return f"{self.source.dotted()}->{self.target.value}"


class NotMigrated(Node):
    kind: Literal["not_migrated"] = "not_migrated"
    subject: str
    reason: str


# ------------------------------------------------------------------------------------------ tests


class Given(Node):
    kind: Literal["given"] = "given"
    source: SourcePath
    records: list[dict[str, Any]]  # plain data: str, int, Decimal, bool, None, lists, dicts


class Expect(Node):
    kind: Literal["expect"] = "expect"
    mode: Literal["record", "none", "quarantine"]
    target: Name | None = None
    fields: list[Assign] = Field(default_factory=list)
    message: str | None = None


class TestDecl(Node):
    kind: Literal["test"] = "test"
    name: str
    givens: list[Given]
    expects: list[Expect] = Field(default_factory=list)


Decl = Annotated[
    MigrationDecl | SourceDecl | TargetDecl | ImportDecl | ParamDecl | OwnersDecl | ValueMapDecl | SchemaDecl | ObjectMap | MergeMap | NotMigrated | TestDecl,
    Field(discriminator="kind"),
]


class Module(BaseModel):
    """A whole .fmap file, declarations in source order, plus its comments (for the formatter)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["module"] = "module"
    file: str
    body: list[Decl] = Field(default_factory=list)
    comments: list[Comment] = Field(default_factory=list)

    def decls(self, cls: type) -> list:
        return [d for d in self.body if isinstance(d, cls)]

    def first(self, cls: type):
        found = self.decls(cls)
        return found[0] if found else None

    @property
    def maps(self) -> list[ObjectMap]:
        return self.decls(ObjectMap)

    @property
    def merges(self) -> list[MergeMap]:
        return self.decls(MergeMap)

    @property
    def valuemaps(self) -> dict[str, ValueMapDecl]:
        return {v.name.value: v for v in self.decls(ValueMapDecl)}

    @property
    def params(self) -> dict[str, ParamDecl]:
        return {p.name.value: p for p in self.decls(ParamDecl)}


for _m in list(globals().values()):
    if isinstance(_m, type) and issubclass(_m, BaseModel) and _m is not BaseModel:
        _m.model_rebuild()
