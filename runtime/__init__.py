"""What generated modules import, and nothing of the compiler.

Generated code imports only names listed in ``runtime.__all__`` (a test enforces it), so a compiled
mapping runs with the runtime alone installed: the function library (every function the language
names), the operators, the plan model and its placeholders.
"""

from decimal import Decimal

from runtime import functions as _functions
from runtime.functions import *  # noqa: F403  (the catalog, re-exported by name)
from runtime.functions import (
    FUNCTIONS,
    MISSING,
    ConversionError,
    collect_reports,
    compile_date,
    compile_datetime,
    is_blank,
)
from runtime.ops import (
    drop_missing,
    get_path,
    key_str,
    op_add,
    op_concat,
    op_div,
    op_eq,
    op_ge,
    op_gt,
    op_in,
    op_le,
    op_lt,
    op_mod,
    op_mul,
    op_ne,
    op_neg,
    op_sub,
    present,
    project,
    ref_key,
    truthy,
)
from runtime.plan import (
    Attachment,
    AttachSpec,
    Owner,
    Plan,
    QuarantineRecord,
    Ref,
    SkipRule,
    SplitSpec,
    Step,
    UnmappedValue,
    locate,
)

__all__ = sorted(
    set(_functions.__all__)
    | {
        "Decimal", "FUNCTIONS", "MISSING", "ConversionError", "collect_reports", "compile_date",
        "compile_datetime", "is_blank", "drop_missing", "get_path", "key_str", "op_add",
        "op_concat", "op_div", "op_eq", "op_ge", "op_gt", "op_in", "op_le", "op_lt", "op_mod",
        "op_mul", "op_ne", "op_neg", "op_sub", "present", "project", "ref_key", "truthy",
        "AttachSpec", "Attachment", "Owner", "Plan", "QuarantineRecord", "Ref", "SkipRule",
        "SplitSpec", "Step", "UnmappedValue", "locate",
    }
)
