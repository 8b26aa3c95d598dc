"""``DrainNotifier``: the web process asks for the judging job after the answer, once for a
burst of hits, and never leaves a hit without a call that started after it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from engine.adapters.jobqueue import InProcessJobQueue
from engine.services.tracking_hits import DRAIN_FLAG
from engine.services.tracking_notify import DrainNotifier
from tests.support.topology import poll


class CountingQueue(InProcessJobQueue):
    """An in-process queue that counts the flag calls and can hold one at a gate."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.gate: threading.Event | None = None
        self.entered = threading.Event()

    def set_flag(self, name: str, ttl: int, *, replace: bool = False) -> bool:
        self.calls += 1
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(30)
        return super().set_flag(name, ttl, replace=replace)

    def enqueue_by_path(self, path: str, *args: object, queue_name: str = "") -> bool:
        return True  # the job itself is not under test here


@pytest.fixture
def queue() -> Iterator[CountingQueue]:
    carrier = CountingQueue()
    yield carrier
    carrier.close()


def test_a_burst_of_hits_makes_one_call(queue: CountingQueue) -> None:
    notifier = DrainNotifier(queue)
    queue.gate = threading.Event()
    notifier.hit_recorded()
    assert queue.entered.wait(30)  # the first call is under way, held at the gate
    threads = [threading.Thread(target=notifier.hit_recorded) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    queue.gate.set()
    assert notifier.wait_idle(30)
    # The first call started before the 50 hits: one more call, started after all of
    # them, covers the whole burst.
    assert queue.calls == 2
    queue.clear_flag(DRAIN_FLAG)


def test_the_thread_ends_when_idle_and_comes_back_with_the_next_hit(
    queue: CountingQueue,
) -> None:
    notifier = DrainNotifier(queue, idle_seconds=0.05)
    notifier.hit_recorded()
    assert notifier.wait_idle(30)
    deadline = time.monotonic() + 30
    poll(
        lambda: not any(t.name == "nurture-tracking-drain" for t in threading.enumerate()),
        deadline,
        "the idle notifier thread to end",
    )
    queue.clear_flag(DRAIN_FLAG)
    notifier.hit_recorded()
    assert notifier.wait_idle(30)
    assert queue.calls == 2


class StampingQueue(CountingQueue):
    """Records when each call started."""

    def __init__(self) -> None:
        super().__init__()
        self.started: list[float] = []

    def set_flag(self, name: str, ttl: int, *, replace: bool = False) -> bool:
        self.started.append(time.monotonic())
        return super().set_flag(name, ttl, replace=replace)


def test_a_steady_stream_of_hits_makes_a_call_per_rest_and_one_after_the_last() -> None:
    """Hits one after the other do not each get a call: the thread rests between calls,
    and the hits of a rest share the call after it, which starts after the last of them.
    The rest is held by the test (no timing): 40 hits arrive while the thread rests."""
    queue = StampingQueue()
    resting, wake = threading.Semaphore(0), threading.Semaphore(0)

    def rest(seconds: float) -> None:
        assert seconds == 0.2
        resting.release()
        assert wake.acquire(timeout=30)

    try:
        notifier = DrainNotifier(queue, interval_seconds=0.2, rest=rest)
        notifier.hit_recorded()
        assert resting.acquire(timeout=30)  # the first call made, the thread resting
        assert queue.calls == 1
        hits: list[float] = []
        for _ in range(40):
            hits.append(time.monotonic())
            notifier.hit_recorded()
        assert queue.calls == 1  # nothing called during the rest, whatever the hits
        wake.release()
        assert resting.acquire(timeout=30)  # one call for the 40, then the next rest
        assert queue.calls == 2
        assert queue.started[-1] >= hits[-1]  # the call started after the last hit
        wake.release()
        assert notifier.wait_idle(30)
        assert queue.calls == 2
        queue.clear_flag(DRAIN_FLAG)
    finally:
        queue.close()
