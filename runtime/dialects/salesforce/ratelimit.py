"""Pacing against Salesforce's rolling-window request allocation (API_NOTES.md 2.7).

The allocation is "at most L requests in any 24 h", not a refilling bucket: a token bucket that
starts full lets through L at once and then L more as it refills within the same 24 h, so the org
answers 403 ``REQUEST_LIMIT_EXCEEDED`` (which the connector must treat as fatal: the day is
spent). :class:`RollingWindowPacer` counts the requests sent in the window and waits, before the
next one, until enough old ones leave it: the most a client can send without a 403.

The window is the org's, not the run's: other integrations (or yesterday's run) may have spent
part of it. Every Salesforce answer says so in ``Sforce-Limit-Info: api-usage=used/total``;
:meth:`RollingWindowPacer.observe` takes it, and when the org reports more than this client has
counted, books the difference as spent *now* (its real times are unknown; booking them now keeps
them in the window longest, so the estimate never falls below the org's own count). The org's
``total`` replaces the configured limit (add-ons and licences are the org's to know).

``reserve`` keeps a share of the allocation for the admin and the org's other integrations. A wait
longer than ``max_wait`` raises :class:`AllocationSpent` (a ``FatalError``): the run stops cleanly
before the org is locked out, and ``fmap run --resume`` continues once the window frees up.

Memory is bounded by a count per time bucket (``buckets`` per window: 1,440, one a minute for
24 h), not one timestamp per request: a 24 h allocation of 5,000,000 (a full sandbox) would be a
deque of 5 M floats. A bucket keeps its count and its latest request time and leaves the window
when that latest request does, so the estimate is conservative by at most one bucket's width
(1/1,440 of the window) and exact when a bucket's requests share one instant.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

from runtime.destinations.base import FatalError

__all__ = ["RollingWindowPacer", "AllocationSpent", "DEFAULT_RESERVE", "DEFAULT_MAX_WAIT",
           "WINDOW_SECONDS", "BUCKETS"]

WINDOW_SECONDS = 24 * 3600.0
DEFAULT_RESERVE = 0.03  # of the allocation, kept for the admin and other integrations
DEFAULT_MAX_WAIT = 900.0  # seconds; a longer wait stops the run (resume later)
BUCKETS = 1440  # per window: one a minute over 24 h


class AllocationSpent(FatalError):
    """The next request would not fit in the allocation within ``max_wait``: stop, resume later."""


def _usable(limit: int, reserve: float) -> int:
    return max(1, int(limit) - round(int(limit) * max(0.0, min(reserve, 1.0))))


class RollingWindowPacer:
    """At most ``limit`` (less ``reserve``) requests in any ``window_seconds``; see the module."""

    def __init__(self, limit: int, window_seconds: float = WINDOW_SECONDS, *,
                 reserve: float = 0.0, max_wait: float = math.inf,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, buckets: int = BUCKETS) -> None:
        self.allocation = int(limit)
        self.reserve = reserve
        self.limit = _usable(limit, reserve)
        self.window = float(window_seconds)
        self.max_wait = max_wait
        self.clock = clock
        self.sleep = sleep
        self.width = self.window / max(1, buckets)
        # [bucket index, count, latest request time], oldest first; at most buckets + 1
        self._buckets: deque[list] = deque()
        self._total = 0
        self.sent = 0  # requests this client counted (all time)
        self.elsewhere = 0  # requests the org reported beyond this client's count (all time)
        self.waited = 0.0
        self.waits = 0
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ accounting
    def _expire(self, now: float) -> None:
        while self._buckets and self._buckets[0][2] <= now - self.window:
            self._total -= self._buckets.popleft()[1]

    def _book(self, now: float, n: int) -> None:
        idx = math.floor(now / self.width) if self.width > 0 else 0
        if self._buckets and self._buckets[-1][0] >= idx:
            b = self._buckets[-1]
            b[1] += n
            b[2] = max(b[2], now)
        else:
            self._buckets.append([idx, n, now])
        self._total += n

    @property
    def used(self) -> int:
        """Requests counted in the window now (this client's and those reported elsewhere)."""
        with self._lock:
            self._expire(self.clock())
            return self._total

    def wait_for(self, cost: int = 1) -> float:
        """Seconds until ``cost`` more requests fit (0: now)."""
        with self._lock:
            now = self.clock()
            self._expire(now)
            return self._wait(now, cost)

    def _wait(self, now: float, cost: int) -> float:
        need = self._total + cost - self.limit
        if need <= 0:
            return 0.0
        freed = 0
        for _, n, last in self._buckets:
            freed += n
            if freed >= need:
                return max(last + self.window - now, 1e-9)
        return self.window

    # ------------------------------------------------------------------ the protocol
    def __call__(self, cost: int = 1) -> None:
        """Block until ``cost`` more requests fit in the window, then count them; raise
        :class:`AllocationSpent` (sending nothing) when that wait would exceed ``max_wait``."""
        with self._lock:
            while True:
                now = self.clock()
                self._expire(now)
                wait = self._wait(now, cost)
                if wait <= 0:
                    self._book(now, cost)
                    self.sent += cost
                    return
                if wait > self.max_wait:
                    raise AllocationSpent(
                        f"the org's daily API request allocation is nearly used up: "
                        f"{self._total} of {self.allocation} requests in the rolling "
                        f"{_span(self.window)} window ({self.allocation - self.limit} kept in "
                        f"reserve); the next request fits in {_span(wait)}, more than the "
                        f"{_span(self.max_wait)} max wait. Stopped before Salesforce answers 403 "
                        "REQUEST_LIMIT_EXCEEDED; `fmap run --resume <run>` continues after the "
                        "window frees up")
                self.waits += 1
                self.waited += wait
                self.sleep(wait)

    def observe(self, used: int, total: int | None = None) -> None:
        """An answer's ``Sforce-Limit-Info: api-usage=used/total``: adopt ``total``; book what
        the org counted beyond this client's count as spent now."""
        with self._lock:
            if total and total != self.allocation:
                self.allocation = int(total)
                self.limit = _usable(total, self.reserve)
            now = self.clock()
            self._expire(now)
            extra = int(used) - self._total
            if extra > 0:
                self._book(now, extra)
                self.elsewhere += extra


def _span(seconds: float) -> str:
    if math.isinf(seconds):
        return "unbounded"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.1f} s"
