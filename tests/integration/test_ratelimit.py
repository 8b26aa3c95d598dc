"""Per-domain send rate limits: local token bucket and the Redis-shared counter."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from engine.adapters.ratelimit import LocalRateLimiter, RedisRateLimiter
from tests.support.rq_helpers import flushed_redis, redis_db_url


def test_local_limiter_makes_a_burst_wait_for_tokens():
    waits: list[float] = []
    limiter = LocalRateLimiter(5, sleep=lambda s: (waits.append(s), time.sleep(s)))
    for _ in range(5):
        limiter.acquire("example.com")
    assert waits == []  # a full bucket lets the first 5 through at once
    limiter.acquire("example.com")
    assert waits and 0 < waits[0] <= 0.2 + 1e-6
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
                limiter.acquire("example.com")
                with lock:
                    stamps.append(int(time.time()))

        threads = [threading.Thread(target=send) for _ in range(3)]  # 3 "workers"
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        per_second = Counter(stamps)
        assert sum(per_second.values()) == 12
        assert max(per_second.values()) <= 4
        assert len(per_second) >= 3
