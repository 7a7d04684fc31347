"""Client-side rate limiting and retry timing.

A token bucket per destination, driven by the dialect's model (requests, credits or tokens per
window): a call of cost c waits until c units are available, so a run stays under the vendor's limit
instead of discovering it through 429s. Clock and sleep are injected so tests and benchmarks are
deterministic and fast.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

__all__ = ["TokenBucket", "Backoff"]


class TokenBucket:
    def __init__(self, per_window: float, window_seconds: float, *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.capacity = float(per_window)
        self.rate = per_window / window_seconds if per_window > 0 else 0.0
        self.tokens = float(per_window)
        self.clock = clock
        self.sleep = sleep
        self.last = clock()
        self.waited = 0.0
        self._lock = threading.Lock()

    @property
    def unlimited(self) -> bool:
        return self.rate <= 0

    def acquire(self, cost: float = 1.0) -> None:
        if self.unlimited:
            return
        cost = min(cost, self.capacity)
        with self._lock:
            while True:
                now = self.clock()
                self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
                self.last = now
                # a rounding slack: after sleeping the computed wait, the refill can fall short
                # of ``cost`` by an ulp, and at a large clock value a tiny wait does not move the
                # clock at all (``t + 1e-17 == t``): without it a fake clock spins forever
                if self.tokens >= cost - 1e-9:
                    self.tokens = max(0.0, self.tokens - cost)
                    return
                wait = (cost - self.tokens) / self.rate
                self.waited += wait
                self.sleep(wait)


class Backoff:
    """Exponential backoff with full jitter, honouring Retry-After (at least 1 s when it is 0)."""

    def __init__(self, base: float = 0.5, cap: float = 60.0, seed: int | None = None) -> None:
        self.base = base
        self.cap = cap
        self.rng = random.Random(seed)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return max(float(retry_after), 1.0)
        return self.rng.uniform(0, min(self.cap, self.base * (2 ** max(attempt - 1, 0))))
