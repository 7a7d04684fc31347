"""Fault plans from option text, for every dialect's sandbox hooks.

``open_sandbox`` / ``serve_sandbox`` take ``faults`` as a :class:`FaultPlan` (programmatic) or as
the text of a URI query or the CLI's ``--faults`` (``seed=1,throttle_rate=0.1,...``). The store
injects the faults, the same way for every CRM, so one parser serves the four dialects; what a
fault looks like on the wire (a 429, a 500, a dropped connection) stays in each emulator.
"""

from __future__ import annotations

from typing import Any

__all__ = ["parse_faults"]


def parse_faults(spec: Any):
    """A :class:`FaultPlan`, or one from ``"seed=1,throttle_rate=0.1,..."``; None stays None.
    A bad entry raises :class:`ValueError` naming it (the CLI prints it, not a traceback)."""
    from runtime.destinations.faults import FaultPlan

    if spec is None or isinstance(spec, FaultPlan):
        return spec
    kw: dict[str, Any] = {}
    for part in str(spec).split(","):
        if not part.strip():
            continue
        k, _, v = part.partition("=")
        k = k.strip()
        try:
            kw[k] = int(v) if k in ("seed", "fatal_after_calls") else (
                v.strip().lower() in ("1", "true") if k == "read_faults" else float(v))
        except ValueError:
            raise ValueError(f"fault option {k}={v.strip()!r} is not a number") from None
    seed = kw.pop("seed", 0)
    try:
        return FaultPlan(seed, **kw)
    except TypeError:
        raise ValueError(f"unknown fault option in {str(spec)!r}; known: seed, "
                         "record_error_rate, batch_failure_rate, timeout_rate, "
                         "lost_response_rate, throttle_rate, throttle_retry_after, "
                         "fatal_after_calls, read_faults") from None
