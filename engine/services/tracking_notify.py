"""Asking for the judging job off the request path, for a web process on Redis.

``request_drain`` is one Redis round trip (``SET NX EX``, plus the enqueue for the first
hit of a burst). On a busy machine a round trip to another process costs milliseconds of
waiting for it to be scheduled, as much as the hit's own ``INSERT``, so the endpoints do
not make it: they set an event (no I/O) and answer, and one thread of the process makes
the call, once for however many hits arrived meanwhile.

Nothing is weaker than calling it inline: each hit sets the event after its row is
committed, and the thread clears the event before it calls ``request_drain``, so every hit
is followed by a call that starts after its commit. A process dying in between leaves its
last hits to the tick's sweep, exactly as a failed inline enqueue would. The thread ends
after ``IDLE_SECONDS`` without hits (and starts again with the next), so an app built and
dropped in a test leaves nothing running, and a forked process starts its own.

After each call the thread rests ``INTERVAL_SECONDS`` before it looks for hits again, so a
busy process makes at most a few calls a second, whatever its rate of hits: without the
rest, hits arriving one after the other (each answered in a millisecond) each woke the
thread for a call of their own, a Redis round trip and a wake-up per hit (a third of a
pixel's CPU in a profile). The hits of the rest are covered by the call that follows it,
which starts after their commits, as the rule above asks; the judging starts up to that
much later, which nobody waits for.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

from engine.services.ports import FlaggedQueue
from engine.services.tracking_hits import request_drain

__all__ = ["IDLE_SECONDS", "INTERVAL_SECONDS", "DrainNotifier"]

log = logging.getLogger(__name__)

IDLE_SECONDS = 5.0
INTERVAL_SECONDS = 0.1


class DrainNotifier:
    """Coalesces "a hit was recorded" into ``request_drain`` calls on a thread of its own."""

    def __init__(
        self,
        queue: FlaggedQueue,
        *,
        idle_seconds: float = IDLE_SECONDS,
        interval_seconds: float = INTERVAL_SECONDS,
        rest: Callable[[float], None] = time.sleep,
    ) -> None:
        self._queue = queue
        self._idle_seconds = idle_seconds
        self._interval_seconds = interval_seconds
        self._rest = rest  # a test holds the thread in its rest instead of timing it
        self._wanted = threading.Event()
        self._lock = threading.Condition()
        self._busy = False  # a request_drain call is under way
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    def hit_recorded(self) -> None:
        """Called after a hit's row is committed; returns at once."""
        self._wanted.set()
        with self._lock:
            if self._thread is None or self._pid != os.getpid():
                self._pid = os.getpid()
                self._thread = threading.Thread(
                    target=self._run, name="nurture-tracking-drain", daemon=True
                )
                self._thread.start()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every hit recorded so far has had its ``request_drain`` call; False on
        timeout (tests, and a graceful shutdown that wants the job queued)."""
        with self._lock:
            return self._lock.wait_for(self._settled, timeout)

    def _settled(self) -> bool:
        return not self._busy and not self._wanted.is_set()

    def _run(self) -> None:
        while True:
            if not self._wanted.wait(self._idle_seconds):
                with self._lock:
                    if self._wanted.is_set():
                        continue  # a hit came as the wait ended
                    self._thread = None
                    return
            with self._lock:
                self._busy = True
                self._wanted.clear()
            try:
                request_drain(self._queue)
            except Exception:  # the hits are committed: the tick's sweep will judge them
                log.exception("tracking: could not queue the job judging the hits")
            finally:
                with self._lock:
                    self._busy = False
                    self._lock.notify_all()
            self._rest(self._interval_seconds)
