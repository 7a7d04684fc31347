"""The simulated clock the rate-limit benchmarks share: sleeping advances it, so a day of a CRM's
limit window passes in the seconds the calls themselves take."""

from __future__ import annotations

__all__ = ["FakeClock"]


class FakeClock:
    """Callable like ``time.monotonic``; ``sleep`` advances it by at least ``min_sleep`` (a zero
    sleep that advanced nothing would let a retry loop spin without time passing)."""

    def __init__(self, min_sleep: float = 0.001) -> None:
        self.t = 0.0
        self.min_sleep = min_sleep

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += max(s, self.min_sleep)
