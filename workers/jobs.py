"""RQ job functions: thin, idempotent, ids and ISO strings in, a small JSON dict out.

Each job finds its wiring with ``current_runtime()`` and calls one service; the rules live in
the service, never here. Signatures are contracts with jobs already sitting in Redis: add new
parameters last, with defaults, so a queued job survives a deploy.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from engine.clock import parse_instant
from workers.runtime import current_runtime

__all__ = ["tick_job"]


def tick_job(now_iso: str | None = None) -> dict[str, Any]:
    """Advance every enrollment due at ``now_iso`` (default: the runtime clock's now).

    Safe to run twice or concurrently: the tick claims due rows in the database (``SKIP
    LOCKED`` on PostgreSQL), so overlapping runs split the work instead of doubling it.
    """
    # Imported at call time: the services pull in the whole store, which processes that
    # only enqueue ticks (the web app, the scheduler) have no need to load.
    from engine.services.tick import tick

    runtime = current_runtime()
    now = parse_instant(now_iso) if now_iso is not None else runtime.clock.now()
    report = tick(runtime.uow, now, batch_size=runtime.settings.tick_batch_size)
    return {"now": now.isoformat(), **dataclasses.asdict(report)}
