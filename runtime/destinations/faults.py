"""Deterministic fault injection for sandbox destinations.

A :class:`FaultPlan` owns its own ``random.Random(seed)`` and draws its decisions in call order:
one draw per faultable call (which call-level fault, if any) and, for calls that go on to write,
one draw per record (injected record error). Replaying the same sequence of calls against a plan
with the same seed therefore reproduces the same outcomes, whatever else the process does with
the global ``random`` module.

Call-level faults and what the destination does with them:

============== ============================================ ===================================
fault          raised                                       store
============== ============================================ ===================================
throttle       ``InjectedThrottle("429", retry_after=...,   nothing written
               maybe_committed=False)``
batch failure  ``TransientError("injected 503",             nothing written
               maybe_committed=False)``
timeout        ``TransientError("injected timeout",         nothing written (but the client
               maybe_committed=True)``                      cannot know that)
lost response  ``TransientError("response lost",            the write COMMITS first
               maybe_committed=True)``
fatal          ``FatalError`` on every call after           nothing written
               ``fatal_after_calls`` calls (a daily quota)
============== ============================================ ===================================

A record error makes one item fail with code ``INJECTED`` and ``retryable=True``; the rest of the
batch is written normally.

Faults apply to write calls (create/upsert/update/delete/upload_attachment); reads are faulted only
when ``read_faults=True`` (and then never with record errors or lost responses, which are write
notions: a "lost" read is reported as a timeout).
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field

from runtime.destinations.base import FatalError, TransientError

__all__ = ["FaultPlan", "CallFault", "FAULT_KINDS", "INJECTED", "InjectedThrottle"]

INJECTED = "INJECTED"
FAULT_KINDS = ("ok", "throttle", "batch_failure", "timeout", "lost_response", "fatal")


class InjectedThrottle(TransientError):
    """An injected throttle: the dialect emulators answer it with their vendor's rate-limit
    response (429, Salesforce's 403 REQUEST_LIMIT_EXCEEDED...), the other transient faults with
    a server error. A class, not the message text, is what tells them apart."""


@dataclass
class CallFault:
    """The decision for one call. ``kind`` is one of :data:`FAULT_KINDS`."""

    call_no: int
    op: str
    kind: str = "ok"
    retry_after: float | None = None
    record_errors: list[int] = field(default_factory=list)  # indexes of items that failed

    def raise_before_write(self) -> None:
        """Raise for the faults that prevent the write (everything but ``ok``/``lost_response``)."""
        if self.kind == "fatal":
            raise FatalError(f"injected fatal error: call quota exhausted (call {self.call_no})")
        if self.kind == "throttle":
            raise InjectedThrottle("429 Too Many Requests (injected)",
                                   retry_after=self.retry_after, maybe_committed=False)
        if self.kind == "batch_failure":
            raise TransientError("injected 503 Service Unavailable", maybe_committed=False)
        if self.kind == "timeout":
            raise TransientError("injected timeout (outcome unknown)", maybe_committed=True)

    def raise_after_write(self) -> None:
        """Raise for a lost response: the caller has already committed the write."""
        if self.kind == "lost_response":
            raise TransientError("response lost (injected; the write was committed)",
                                 maybe_committed=True)


class FaultPlan:
    """Seeded fault decisions. Rates are probabilities in [0, 1]; call-level rates must sum to
    at most 1 (they partition one draw per call)."""

    def __init__(
        self,
        seed: int,
        record_error_rate: float = 0.0,
        batch_failure_rate: float = 0.0,
        timeout_rate: float = 0.0,
        lost_response_rate: float = 0.0,
        throttle_rate: float = 0.0,
        throttle_retry_after: float = 0.0,
        fatal_after_calls: int | None = None,
        *,
        read_faults: bool = False,
    ) -> None:
        rates = {
            "record_error_rate": record_error_rate, "batch_failure_rate": batch_failure_rate,
            "timeout_rate": timeout_rate, "lost_response_rate": lost_response_rate,
            "throttle_rate": throttle_rate,
        }
        for name, value in rates.items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {value}")
        if throttle_rate + batch_failure_rate + timeout_rate + lost_response_rate > 1.0 + 1e-9:
            raise ValueError("call-level fault rates add up to more than 1")
        if fatal_after_calls is not None and fatal_after_calls < 0:
            raise ValueError("fatal_after_calls must be >= 0")
        self.seed = seed
        self.record_error_rate = record_error_rate
        self.batch_failure_rate = batch_failure_rate
        self.timeout_rate = timeout_rate
        self.lost_response_rate = lost_response_rate
        self.throttle_rate = throttle_rate
        self.throttle_retry_after = throttle_retry_after
        self.fatal_after_calls = fatal_after_calls
        self.read_faults = read_faults
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.calls = 0
        self.log: list[CallFault] = []  # every decision, in call order (for tests and reports)

    def __repr__(self) -> str:
        return (f"FaultPlan(seed={self.seed}, record_error_rate={self.record_error_rate}, "
                f"batch_failure_rate={self.batch_failure_rate}, timeout_rate={self.timeout_rate}, "
                f"lost_response_rate={self.lost_response_rate}, throttle_rate={self.throttle_rate}, "
                f"fatal_after_calls={self.fatal_after_calls})")

    def decide(self, op: str, *, read: bool = False) -> CallFault:
        """Draw the call-level decision for the next call."""
        if read and not self.read_faults:
            return CallFault(call_no=0, op=op)  # not counted, not logged: reads are not faulted
        with self._lock:
            self.calls += 1
            decision = CallFault(call_no=self.calls, op=op)
            r = self._rng.random()  # always drawn, so the sequence does not depend on fatal state
            if self.fatal_after_calls is not None and self.calls > self.fatal_after_calls:
                decision.kind = "fatal"
            else:
                edge = 0.0
                bands = [
                    ("throttle", self.throttle_rate),
                    ("batch_failure", self.batch_failure_rate),
                    ("timeout", self.timeout_rate),
                    ("lost_response", 0.0 if read else self.lost_response_rate),
                ]
                for kind, rate in bands:
                    edge += rate
                    if r < edge:
                        decision.kind = kind
                        break
                if decision.kind == "throttle":
                    decision.retry_after = self.throttle_retry_after
            self.log.append(decision)
            return decision

    def record_fails(self, decision: CallFault, index: int) -> bool:
        """Draw whether item ``index`` of the call fails with ``INJECTED``."""
        if self.record_error_rate <= 0.0:
            return False
        with self._lock:
            failed = self._rng.random() < self.record_error_rate
        if failed:
            decision.record_errors.append(index)
        return failed

    def outcomes(self) -> list[tuple[int, str, str, tuple[int, ...]]]:
        """The decisions so far as plain tuples ``(call_no, op, kind, record_error_indexes)``."""
        with self._lock:
            return [(d.call_no, d.op, d.kind, tuple(d.record_errors)) for d in self.log]
