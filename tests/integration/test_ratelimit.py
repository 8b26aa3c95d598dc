"""Per-domain send rate limits: local token bucket and the Redis-shared counter."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from engine.adapters.ratelimit import LocalRateLimiter, RedisRateLimiter
from tests.support.rq_helpers import flushed_redis, redis_db_url


class FakeTime:
    """A monotonic clock that only moves when the limiter sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def test_local_limiter_makes_a_burst_wait_for_tokens():
    fake = FakeTime()
    waits = fake.waits
    limiter = LocalRateLimiter(5, sleep=fake.sleep, clock=lambda: fake.now)
    for _ in range(5):
        limiter.acquire("example.com")
    assert waits == []  # a full bucket lets the first 5 through at once
    limiter.acquire("example.com")
    assert waits == [pytest.approx(0.2)]  # one token's worth at 5 per second
    limiter.acquire("other.example")  # another domain has its own bucket
    assert len(waits) == 1


def test_local_limiter_refuses_a_nonsense_rate():
    with pytest.raises(ValueError, match="positive"):
        LocalRateLimiter(0)


def test_redis_limiter_never_lets_more_than_the_limit_through_in_a_second():
    with flushed_redis(redis_db_url(12)) as redis:
        limiter = RedisRateLimiter(redis, 4)
        stamps: list[int] = []
        lock = threading.Lock()

        def send() -> None:
            for _ in range(4):
                granted = limiter.acquire_window("example.com")  # the window it counted against
                with lock:
                    stamps.append(granted)

        threads = [threading.Thread(target=send) for _ in range(3)]  # 3 "workers"
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        per_second = Counter(stamps)
        assert sum(per_second.values()) == 12
        assert max(per_second.values()) <= 4
        assert len(per_second) >= 3
