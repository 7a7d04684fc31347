"""The schema checks: one plain function per module, each ``(program, schemas) -> diagnostics``.

They run after name resolution (:mod:`compiler.resolve`), in the order of :data:`SCHEMA_PASSES`,
against the schemas :func:`compiler.schemas.resolve_schemas` found. A check whose schema is unknown
returns nothing. All diagnostics are collected and reported together.
"""

from __future__ import annotations

from compiler.checks.attachments import check_attachments
from compiler.checks.cycles import check_cycles
from compiler.checks.lengths import check_lengths
from compiler.checks.naming import check_naming
from compiler.checks.owners import check_owners
from compiler.checks.picklists import check_picklists
from compiler.checks.readonly import check_readonly
from compiler.checks.refs import check_refs
from compiler.checks.required import check_required
from compiler.checks.routing import check_routing
from compiler.checks.source_names import check_source_names
from compiler.checks.target_names import check_target_names
from compiler.checks.types import check_types
from compiler.checks.valuemaps import check_valuemaps

__all__ = ["SCHEMA_PASSES"]

SCHEMA_PASSES = (
    check_source_names,
    check_target_names,
    check_types,
    check_required,
    check_picklists,
    check_valuemaps,
    check_lengths,
    check_readonly,
    check_refs,
    check_naming,
    check_owners,
    check_attachments,
    check_routing,
    check_cycles,
)
