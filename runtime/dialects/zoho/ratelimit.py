"""Zoho CRM API limits as data: credits per rolling 24 h window per org, and concurrency per app.

From API_NOTES.md 1.7 (Zoho's api-limits page): credits = base + users x per_user, capped per
edition; insert/update/upsert cost one credit per 10 records (``ceil(n / 10)``); most other calls
cost 1; COQL costs 1, 2 or 3 by LIMIT; creating a custom module costs 500 [3p]. Concurrency per
org per app is 5/10/15/20/25 by edition, with a sub-concurrency of 10 for heavy APIs.

:class:`CreditLedger` is the rolling-window accounting the sandbox enforces (and a benchmark can
drive with a fake clock); :func:`destination_rate_limit` is what the client exposes to the
executor as ``capabilities.rate_limit``.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from runtime.destinations.base import RateLimit as DestinationRateLimit
from runtime.dialects.zoho.capabilities import RATE_LIMIT

__all__ = [
    "WINDOW_SECONDS", "EDITIONS", "Tier", "credits_for", "write_cost", "coql_cost",
    "CreditLedger", "CreditGauge", "destination_rate_limit",
]

WINDOW_SECONDS = 24 * 3600.0
EDITIONS = tuple(RATE_LIMIT.plans)
_EDITION_ALIASES = {"starter": "standard", "crm_plus": "ultimate", "zoho_one": "enterprise",
                    "crmplus": "ultimate", "zohoone": "enterprise"}


def _plan(edition: str):
    key = edition.strip().lower().replace(" ", "_").replace("-", "_")
    key = _EDITION_ALIASES.get(key, key)
    try:
        return key, RATE_LIMIT.plans[key]
    except KeyError:
        raise ValueError(f"unknown Zoho edition {edition!r}; one of {', '.join(EDITIONS)}") from None


def credits_for(edition: str, users: int) -> float:
    """Credits per 24 h for an edition and user count (``math.inf`` when uncapped and huge)."""
    _, p = _plan(edition)
    total = float(p.base or 0) + float(p.per_user or 0) * max(users, 0)
    if p.max is not None:
        total = min(total, float(p.max))
    return total


def write_cost(n_records: int) -> int:
    """Credits of one insert/update/upsert call of ``n_records`` (at least 1)."""
    return max(1, math.ceil(n_records / 10))


def coql_cost(limit: int) -> int:
    return 1 if limit <= 200 else 2 if limit <= 1000 else 3


@dataclass(frozen=True)
class Tier:
    """A configured org: edition + licensed users; ``credits``/``window_seconds``/``concurrency``
    override the edition's numbers (benchmarks scale the window down)."""

    edition: str = "professional"
    users: int = 10
    credits: float | None = None
    window_seconds: float = WINDOW_SECONDS
    concurrency: int | None = None

    @property
    def credit_limit(self) -> float:
        return self.credits if self.credits is not None else credits_for(self.edition, self.users)

    @property
    def concurrency_limit(self) -> int:
        if self.concurrency is not None:
            return self.concurrency
        _, p = _plan(self.edition)
        return p.concurrency or RATE_LIMIT.concurrency or 10


class CreditLedger:
    """Credits spent in a rolling window. ``charge`` either books the cost or says how many seconds
    until enough old credits leave the window."""

    def __init__(self, limit: float, window_seconds: float = WINDOW_SECONDS, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = float(limit)
        self.window = float(window_seconds)
        self.clock = clock
        self._spent: deque[tuple[float, float]] = deque()
        self._total = 0.0
        self._lock = threading.Lock()

    def _expire(self, now: float) -> None:
        while self._spent and self._spent[0][0] <= now - self.window:
            _, c = self._spent.popleft()
            self._total -= c

    @property
    def used(self) -> float:
        with self._lock:
            self._expire(self.clock())
            return self._total

    @property
    def remaining(self) -> float:
        return max(0.0, self.limit - self.used)

    def charge(self, cost: float) -> float | None:
        """Book ``cost``; return None when booked, else seconds to wait (nothing booked)."""
        with self._lock:
            now = self.clock()
            self._expire(now)
            if self._total + cost <= self.limit:
                self._spent.append((now, cost))
                self._total += cost
                return None
            if cost > self.limit:
                return self.window
            need = self._total + cost - self.limit
            freed = 0.0
            for t, c in self._spent:
                freed += c
                if freed >= need:
                    return max(0.001, t + self.window - now)
            return self.window


class CreditGauge:
    """The client's estimate of the credits the org has left, from ``X-API-CREDITS-REMAINING``.

    Why: the executor paces with a token bucket that starts full, but the window is the org's,
    not the run's: other integrations (or yesterday's run) may have spent most of it. Zoho sends
    the header once usage passes 50 %, so from then on the client knows what is left and can wait
    for credits instead of spending its retries on 429s (which may carry no ``retry_after``).

    Between readings the estimate drops by what the client spends and refills at the tier's
    average rate (limit / window): a rolling window frees credits as old calls age out, which
    that rate approximates when usage was spread out; a wrong guess costs one 429, not the run.
    Without a reading the estimate is unknown (``None``) and nothing is held back.
    """

    def __init__(self, tier: Tier, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = tier.credit_limit
        self.rate = (0.0 if math.isinf(self.limit) or tier.window_seconds <= 0
                     else self.limit / tier.window_seconds)
        self.clock = clock
        self._remaining: float | None = None
        self._at = 0.0
        self._lock = threading.Lock()

    def estimate(self) -> float | None:
        with self._lock:
            return self._estimate(self.clock())

    def _estimate(self, now: float) -> float | None:
        if self._remaining is None:
            return None
        return min(self.limit, self._remaining + (now - self._at) * self.rate)

    def observe(self, header: str | None) -> None:
        """Record a response's ``X-API-CREDITS-REMAINING`` (absent: usage is under 50 %)."""
        try:
            value = float(header) if header is not None else None
        except ValueError:
            return
        with self._lock:
            if value is None:
                self._remaining = None
            else:
                self._remaining, self._at = max(0.0, value), self.clock()

    def spend(self, cost: float) -> None:
        with self._lock:
            now = self.clock()
            est = self._estimate(now)
            if est is not None:
                self._remaining, self._at = max(0.0, est - cost), now

    def wait_for(self, cost: float) -> float:
        """Seconds until ``cost`` credits are estimated to be there (0: now, or unknown)."""
        with self._lock:
            est = self._estimate(self.clock())
        if est is None or self.rate <= 0 or est >= cost - 1e-9:
            return 0.0
        return (min(cost, self.limit) - est) / self.rate


def destination_rate_limit(tier: Tier) -> DestinationRateLimit:
    """The executor-facing rate limit: credits per window, 0.1 credit per written record."""
    limit = tier.credit_limit
    return DestinationRateLimit(
        kind="credits",
        per_window=0 if math.isinf(limit) else limit,
        window_seconds=tier.window_seconds,
        write_cost_per_record=0.1,
        write_cost_per_call=0.0,
        read_cost_per_call=1.0,
        concurrency=tier.concurrency_limit,
    )
