"""Send-rate limits per recipient domain, shared by every worker that sends.

Mailbox providers (gmail.com, outlook.com, a company's own server) throttle, and then junk,
a sender that bursts at them; the limit is global, so with Redis it is a counter every
worker shares; without Redis (one process) it is local. Both implement
``engine.services.ports.RateLimiter``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["LocalRateLimiter", "RedisRateLimiter"]


class LocalRateLimiter:
    """A token bucket per key, for the single-process embedded mode."""

    def __init__(
        self,
        per_second: float,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``sleep`` and ``clock`` (seconds, monotonic) are injectable so a test can run a
        burst on a fake clock instead of depending on how fast the machine is."""
        if per_second <= 0:
            raise ValueError("the send rate must be positive")
        self.rate = per_second
        self.sleep = sleep
        self.clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}

    def acquire(self, key: str) -> None:
        while True:
            with self._lock:
                now = self.clock()
                tokens, last = self._buckets.get(key, (self.rate, now))
                tokens = min(self.rate, tokens + (now - last) * self.rate)
                if tokens >= 1:
                    self._buckets[key] = (tokens - 1, now)
                    return
                self._buckets[key] = (tokens, now)
                wait = (1 - tokens) / self.rate
            self.sleep(wait)


class RedisRateLimiter:
    """A fixed one-second window per key in Redis: INCR + EXPIRE, atomic in a pipeline.

    Fixed windows can let up to twice the rate through around a boundary; for protecting a
    sending domain's reputation that is fine, and it costs one round trip per send.
    """

    def __init__(self, redis: object, per_second: float, prefix: str = "nurture:rate") -> None:
        if per_second <= 0:
            raise ValueError("the send rate must be positive")
        self.redis = redis
        self.limit = max(1, int(per_second))
        self.prefix = prefix

    def acquire(self, key: str) -> None:
        self.acquire_window(key)

    def acquire_window(self, key: str) -> int:
        """Wait for a slot; return the one-second window (Unix time) it was counted in,
        which is what the limit promises about (a test checks it against that)."""
        while True:
            now = time.time()
            second = int(now)
            name = f"{self.prefix}:{key}:{second}"
            pipe = self.redis.pipeline()  # type: ignore[attr-defined]
            pipe.incr(name)
            pipe.expire(name, 5)
            count = pipe.execute()[0]
            if count <= self.limit:
                return second
            time.sleep(max(0.0, second + 1 - now))
