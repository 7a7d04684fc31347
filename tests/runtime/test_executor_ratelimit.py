"""The client-side token bucket and backoff, with an injected clock."""

from __future__ import annotations

import signal

import pytest

from runtime.executor.ratelimit import Backoff, TokenBucket


class FakeClock:
    def __init__(self, t: float = 0.0) -> None:
        self.t = t
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.t += s


@pytest.fixture
def alarm():
    signal.alarm(10)  # a spinning bucket fails the test instead of hanging the suite
    yield
    signal.alarm(0)


@pytest.mark.parametrize("start", [0.0, 1e6])
def test_bucket_with_fake_clock_terminates_and_paces(alarm, start):
    c = FakeClock(start)
    b = TokenBucket(20, 1, clock=c.now, sleep=c.sleep)
    for _ in range(2000):
        b.acquire(1)
    # 20 calls of burst, then 20 per second: 1980 calls need 99 s
    assert c.t - start == pytest.approx(99.0, abs=1e-6)


def test_bucket_costs_and_capacity(alarm):
    c = FakeClock()
    b = TokenBucket(10, 2, clock=c.now, sleep=c.sleep)  # 5 units/s
    b.acquire(10)
    assert c.t == 0
    b.acquire(50)  # capped at capacity: waits for a full bucket
    assert c.t == pytest.approx(2.0)
    unlimited = TokenBucket(0, 1, clock=c.now, sleep=c.sleep)
    for _ in range(1000):
        unlimited.acquire(5)
    assert c.t == pytest.approx(2.0)


def test_backoff_honours_retry_after_with_one_second_floor():
    b = Backoff(seed=1)
    assert b.delay(1, 0) == 1.0
    assert b.delay(3, 0.25) == 1.0
    assert b.delay(1, 7.5) == 7.5
    delays = [b.delay(a) for a in range(1, 12)]
    assert all(0 <= d <= 60 for d in delays)
