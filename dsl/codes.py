"""The stable diagnostic codes. A code never changes meaning once released; retired codes stay listed.

FM0xx  reading the input file          FM1xx  syntax
FM2xx  names inside one file           FM3xx  schema checks (source and target)
FM4xx  load planning and code generation
"""

from __future__ import annotations

from dataclasses import dataclass

from dsl.diagnostics import Diagnostic, Related, Severity
from dsl.span import Span

__all__ = ["Code", "CODES", "diag"]


@dataclass(frozen=True)
class Code:
    code: str
    title: str
    severity: Severity
    help: str


_E, _W = Severity.error, Severity.warning

CODES: dict[str, Code] = {
    c.code: c
    for c in [
        # ---- input
        Code("FM001", "cannot read file", _E, "The path does not exist or cannot be read."),
        Code("FM002", "invalid UTF-8", _E, ".fmap files are UTF-8; the byte offset shows where decoding failed."),
        Code("FM003", "not a file", _E, "A directory or special file was given where a .fmap file was expected."),
        Code("FM004", "empty mapping", _W, "The file declares nothing."),
        Code("FM005", "file too large or too deeply nested", _E, "The input exceeds the parser's limits."),
        # ---- syntax
        Code("FM100", "unexpected input", _E, "The parser found something it did not expect here."),
        Code("FM101", "unclosed block", _E, "A `{`, `(` or `[` is never closed before the end of the file."),
        Code("FM102", "missing `=` in assignment", _E, "Field assignments are written `Target_Field = expression`."),
        Code("FM103", "unclosed string", _E, "A string literal has no closing `\"` on its line."),
        Code("FM104", "`==` used for assignment", _E, "Use `=` to assign a field; `==` compares."),
        Code("FM105", "trailing comma", _E, "Lists and argument lists do not take a comma after the last item."),
        Code("FM106", "unknown keyword or statement", _E, "The word does not start any construct here."),
        Code("FM107", "unexpected character", _E, "The character is not part of the language."),
        Code("FM108", "missing `->`", _E, "Maps and value-map entries are written `source -> target`."),
        Code("FM109", "missing expression", _E, "An expression was expected here."),
        # ---- names within a file
        Code("FM201", "duplicate map", _E, "Two maps load the same target under the same name."),
        Code("FM202", "undefined value map", _E, "A pipe names something that is neither a function nor a value map."),
        Code("FM203", "unknown function", _E, "The function is not part of the language."),
        Code("FM204", "wrong number of arguments", _E, "The function takes a different number of arguments."),
        Code("FM205", "`parent` outside an array map", _E, "`parent` refers to the record holding a nested array; it exists only in `map x.items[] -> ...`."),
        Code("FM206", "duplicate field assignment", _E, "A target field is assigned twice in one map."),
        Code("FM207", "undefined parameter", _E, "A `$name` refers to no `param`."),
        Code("FM208", "duplicate definition", _E, "A value map, param, module or header line is defined twice."),
        Code("FM209", "value map without an unmapped policy", _E, "Every value map must say what happens to values it does not list: `_ -> error | passthrough | quarantine | \"default\"`."),
        Code("FM210", "`group` outside a merge", _E, "`group` is the list of child records being merged; it exists only in `merge`."),
        Code("FM211", "map without a key", _W, "Without `key`, records get no external id and re-runs cannot be idempotent."),
        Code("FM212", "unknown keyword argument", _E, "The function does not take this keyword argument."),
        Code("FM213", "missing header", _E, "A mapping declares its `source` and `target`."),
        Code("FM214", "duplicate value-map key", _E, "A value map lists the same source value twice."),
        Code("FM215", "`split` of an unassigned field", _E, "`split` applies to a field the same map assigns."),
        Code("FM216", "import not found", _E, "An imported .fmap file does not exist."),
        Code("FM217", "routing without a fallback", _W, "Maps with `where` on one source and no `otherwise` leave some records unrouted."),
        Code("FM218", "more than one `otherwise`", _E, "A source may have at most one `otherwise` map."),
        Code("FM219", "duplicate key in test data", _E, "A record in a test lists the same field twice."),
        Code("FM220", "unknown test target", _E, "`expect` names no map of this file."),
        Code("FM221", "unused value map or parameter", _W, "The value map or parameter is never used."),
        Code("FM222", "unknown unmapped policy or option", _E, "The option is not one the construct accepts."),
        Code("FM223", "unknown type", _E, "The custom field type is not one the language knows."),
        Code("FM224", "owner() without an owners policy", _E, "`owner()` needs an `owners by email else ...` line saying what happens to unmatched emails."),
        Code("FM225", "reference to no map", _E, "`ref()` and `merge` name a map of this file: its target, or its `as` name."),
        # ---- schema checks (source and target)
        Code("FM300", "unknown target dialect", _E, "`target` names a CRM dialect: zoho, salesforce, freshsales or pipedrive."),
        Code("FM301", "cannot load schema", _E, "A source schema, org snapshot or vendor metadata file is missing or malformed; the message names the file and the JSON path of the bad value."),
        Code("FM302", "no source schema", _W, "No schema file was found for the `source`; source names and types are not checked."),
        Code("FM303", "unknown source object", _E, "The map reads an object (or nested array) the source schema does not have."),
        Code("FM304", "unknown source field", _E, "A path names a field the source object does not have."),
        Code("FM305", "unknown target object", _E, "The map loads an object the destination schema (standard objects, the org snapshot and this file's `create module`) does not have."),
        Code("FM306", "unknown target field", _E, "The map assigns a field the target object does not have; declare custom fields with `extend`."),
        Code("FM307", "type mismatch", _E, "The expression's type (from the source schema and the function library) cannot be stored in the target field's type."),
        Code("FM308", "required field never assigned", _E, "A map that creates records must assign every required field of its target object (the owner field and platform-filled fields excepted)."),
        Code("FM309", "value not in the target picklist", _E, "A value map produces a value that is not one of the target picklist's values; the CRM would reject the record."),
        Code("FM310", "value map not exhaustive", _W, "The source enum has codes the value map does not list; they fall to the `_ ->` policy."),
        Code("FM311", "value-map key not in the source enum", _W, "A value-map key is not a code of the source field it is applied to (a typo, or a stale code)."),
        Code("FM312", "value longer than the target field", _E, "A literal, or a source field by its declared maximum length, exceeds the target field's length; `truncate` or `split` it."),
        Code("FM313", "read-only field assigned", _E, "The target field is read-only (system-filled or an audit field); the CRM ignores or rejects the value."),
        Code("FM314", "lookup to the wrong object", _E, "`ref()` names a map whose target object is not one the lookup field can point to."),
        Code("FM315", "custom name breaks the dialect's naming rules", _E, "Custom modules and fields must follow the CRM's API-name rules (Salesforce `__c`, Freshsales `cf_`...)."),
        Code("FM316", "owner required but never assigned", _E, "The target object requires an owner; assign it with `owner(...)` and an `owners` policy."),
        Code("FM317", "attachment size limit", _W, "The CRM caps attachment size; say what happens to larger files with `limit N oversize skip|fail|quarantine`."),
        Code("FM318", "routing branches overlap", _W, "Two `where` conditions can hold for the same record, which then loads into both maps."),
        Code("FM319", "routing leaves records unrouted", _W, "Without `otherwise`, source codes no `where` condition covers are never loaded."),
        Code("FM320", "schema metadata warning", _W, "A schema file has something fmap does not understand (an unknown vendor field type becomes `unknown`: no type checks apply to that field)."),
        # ---- load planning and code generation
        Code("FM401", "dependency cycle with no deferrable lookup", _E, "Maps that refer to each other load in two passes: a lookup in a field assignment is left out of the first load and written in the deferred update pass. A cycle through `key`, `where`, `skip`, `attach` or a merge cannot be broken that way."),
    ]
}


def diag(
    code: str,
    message: str,
    span: Span | None,
    hint: str | None = None,
    related: list[tuple[Span, str]] | None = None,
    severity: Severity | None = None,
) -> Diagnostic:
    c = CODES[code]
    return Diagnostic(
        code=code,
        severity=severity or c.severity,
        message=message,
        span=span,
        hint=hint,
        related=[Related(span=s, message=m) for s, m in (related or [])],
    )
