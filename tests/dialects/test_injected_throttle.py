"""The emulators tell an injected throttle from the other transient faults by its class
(``InjectedThrottle``), not by "429" in its message: a throttle worded otherwise still gets the
vendor's rate-limit answer, and another fault that happens to mention 429 gets a server error."""

from __future__ import annotations

import importlib

import pytest

from runtime.destinations.base import TransientError, WriteItem
from runtime.destinations.faults import CallFault, InjectedThrottle
from runtime.dialects import get_dialect

# dialect -> (object, a valid record, what its client says for the vendor's rate-limit answer)
CASES = {
    "zoho": ("Leads", {"Last_Name": "A"}, "429 TOO_MANY_REQUESTS"),
    "salesforce": ("Contact", {"LastName": "A"}, "403 REQUEST_LIMIT_EXCEEDED"),
    "freshsales": ("Contact", {"last_name": "A"}, "429 Too Many Requests"),
    "pipedrive": ("Person", {"name": "A"}, "429 rate limited"),
}


class _OneFault:
    """A fault plan whose every call raises ``exc`` before writing."""

    def __init__(self, exc: TransientError) -> None:
        self.exc = exc

    def decide(self, op: str, *, read: bool = False) -> CallFault:
        exc = self.exc

        class Fault(CallFault):
            def raise_before_write(self) -> None:
                raise exc

        return Fault(1, op)

    def record_fails(self, decision, index: int) -> bool:
        return False


@pytest.mark.parametrize("dialect", sorted(CASES))
def test_throttle_is_known_by_its_class(dialect, tmp_path):
    obj, record, throttled = CASES[dialect]
    mod = importlib.import_module(f"runtime.dialects.{dialect}")
    dest = mod.open_sandbox(get_dialect(dialect).standard_schema(), tmp_path / "s.sqlite", None,
                            {})
    try:
        said = {}
        for label, exc in (("throttle", InjectedThrottle("slow down", retry_after=2,
                                                         maybe_committed=False)),
                           ("other", TransientError("upstream said 429", maybe_committed=False))):
            dest.sandbox.store.faults = _OneFault(exc)
            with pytest.raises(TransientError) as info:
                dest.create(obj, [WriteItem("x:1", "x:1", record)])
            said[label] = str(info.value)
        assert throttled in said["throttle"]
        assert throttled not in said["other"] and " 50" in said["other"]  # a 500 or 503
    finally:
        dest.close()
