"""bench/send.py's scaling rounds: ``send_batch`` in one worker process against two at once.

Issue #12 target 4 asks that two worker processes on the two cores send at least 1.7x what
one does. Each round starts fresh processes (``spawn``: nothing inherited from the bench
process but its arguments), lets each warm up on its own messages (template compiled,
database and SMTP connections open), then releases them together at a barrier and times
from the release to the last one's end. A process sends its own slice of ``n`` messages in
batches of ``send_batch_size``, one ``send_batch`` after another, exactly as
``send_messages_job`` does; the throughput of a round is the messages of all its processes
over that wall time.
"""

from __future__ import annotations

import multiprocessing
import time
from dataclasses import dataclass
from multiprocessing.synchronize import Barrier
from typing import Any

WARM = 50  # messages each process sends before the barrier


@dataclass(frozen=True)
class Round:
    processes: int
    messages: int
    wall: float  # from the barrier's release to the last process's end

    @property
    def rate(self) -> float:
        return self.messages / self.wall


def _worker(
    settings_kwargs: dict[str, Any],
    warm: list[int],
    ids: list[int],
    barrier: Barrier,
    results: Any,
) -> None:
    """One worker process: warm up, wait for the others, send ``ids``, report."""
    from engine.clock import SystemClock
    from engine.config import Settings
    from engine.runtime import build_mailer
    from engine.services.delivery import send_batch
    from engine.store import UnitOfWork, make_engine, make_session_factory

    settings = Settings(**settings_kwargs)
    engine = make_engine(settings.database_url)
    factory = make_session_factory(engine)

    def uow() -> UnitOfWork:
        return UnitOfWork(factory)

    mailer = build_mailer(settings, SystemClock())
    size = settings.send_batch_size
    for start in range(0, len(warm), size):
        send_batch(uow, mailer, warm[start : start + size])
    barrier.wait()
    sent = 0
    for start in range(0, len(ids), size):
        sent += send_batch(uow, mailer, ids[start : start + size]).sent
    results.put((time.perf_counter(), sent))
    mailer.transport.close()
    engine.dispose()


def run_round(settings_kwargs: dict[str, Any], slices: list[tuple[list[int], list[int]]]) -> Round:
    """Run one process per ``(warm ids, ids)`` slice at once; time them from the release."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(slices) + 1)
    results = context.Queue()
    procs = [
        context.Process(target=_worker, args=(settings_kwargs, warm, ids, barrier, results))
        for warm, ids in slices
    ]
    for proc in procs:
        proc.start()
    barrier.wait(timeout=300)
    released = time.perf_counter()
    ends = [results.get(timeout=1800) for _ in procs]
    for proc in procs:
        proc.join(60)
        if proc.exitcode != 0:
            raise SystemExit(f"a sending process exited with {proc.exitcode}")
    total = sum(len(ids) for _, ids in slices)
    sent = sum(count for _, count in ends)
    if sent != total:
        raise SystemExit(f"the processes sent {sent} of {total} messages")
    return Round(len(slices), total, max(end for end, _ in ends) - released)


def scaling(
    settings_kwargs: dict[str, Any], pending: list[list[int]], n: int, rounds: int
) -> tuple[list[Round], list[Round]]:
    """Alternating rounds of one process and of two; ``pending`` holds 3 slices of
    ``WARM + n`` ids per round (consumed)."""
    one: list[Round] = []
    two: list[Round] = []

    def take() -> tuple[list[int], list[int]]:
        ids = pending.pop()
        return ids[:WARM], ids[WARM : WARM + n]

    for _ in range(rounds):
        one.append(run_round(settings_kwargs, [take()]))
        two.append(run_round(settings_kwargs, [take(), take()]))
    return one, two
