"""Pacing against Salesforce's rolling-window request allocation (API_NOTES.md 2.7).

The allocation is "at most L requests in any 24 h", not a refilling bucket: a token bucket that
starts full lets through L at once and then L more as it refills within the same 24 h, so the org
answers 403 ``REQUEST_LIMIT_EXCEEDED`` (which the connector must treat as fatal: the day is
spent). :class:`RollingWindowPacer` keeps the times of the last ``limit`` requests and waits, before
the next one, until the oldest leaves the window: the most a client can send without a 403.
``reserve`` keeps a share of the allocation for the org's other integrations.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

__all__ = ["RollingWindowPacer"]


class RollingWindowPacer:
    def __init__(self, limit: int, window_seconds: float, *, reserve: float = 0.0,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.limit = max(1, int(limit * (1.0 - reserve)))
        self.window = float(window_seconds)
        self.clock = clock
        self.sleep = sleep
        self.sent: deque[float] = deque()
        self.waited = 0.0
        self._lock = threading.Lock()

    def __call__(self, cost: int = 1) -> None:
        """Block until one more request fits in the window, then count it."""
        with self._lock:
            while True:
                now = self.clock()
                while self.sent and self.sent[0] <= now - self.window:
                    self.sent.popleft()
                if len(self.sent) < self.limit:
                    self.sent.append(now)
                    return
                wait = self.sent[0] + self.window - now
                self.waited += wait
                self.sleep(wait)
