"""RQ job functions: thin, idempotent, ids and ISO strings in, a small JSON dict out.

Each job finds its wiring with ``current_runtime()`` and calls one service; the rules live in
the service, never here. Signatures are contracts with jobs already sitting in Redis: add new
parameters last, with defaults, so a queued job survives a deploy.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from engine.clock import parse_instant
from engine.runtime import current_runtime

__all__ = [
    "digest_job",
    "handoff_alerts_job",
    "import_check_job",
    "import_job",
    "send_messages_job",
    "tick_job",
    "tracking_hits_job",
]


def tick_job(now_iso: str | None = None) -> dict[str, Any]:
    """Advance every enrollment due at ``now_iso`` (default: the runtime clock's now), and
    reconsider the prospects whose ``reenroll_after`` wait is over (``reentered``).

    Safe to run twice or concurrently: the tick claims due rows in the database (``SKIP
    LOCKED`` on PostgreSQL), so overlapping runs split the work instead of doubling it.
    """
    # Imported at call time: the services pull in the whole store, which processes that
    # only enqueue ticks (the web app, the scheduler) have no need to load.
    from engine.core.policy import FrequencyCap
    from engine.services.tick import tick

    runtime = current_runtime()
    now = parse_instant(now_iso) if now_iso is not None else runtime.clock.now()
    from engine.adapters.jobqueue import QUEUE_MAIL
    from engine.services.dispatch import recover_and_dispatch

    settings = runtime.settings
    cap = FrequencyCap(settings.frequency_cap, timedelta(days=settings.frequency_window_days))
    report = tick(runtime.uow, now, batch_size=settings.tick_batch_size, cap=cap)
    from engine.services.reentry import reenter_due

    # Before the dispatch below, so the first emails of those who re-enter go out now.
    reentry = reenter_due(runtime.uow, now)
    plan = recover_and_dispatch(runtime.uow(), now, runtime.settings)
    for batch in plan.batches:
        runtime.queue.enqueue(send_messages_job, batch, queue_name=QUEUE_MAIL)
    from engine.services.alerts import plan_alerts

    alerts = plan_alerts(runtime.uow(), now, runtime.settings)
    for handoff_id in alerts:
        runtime.queue.enqueue(handoff_alerts_job, handoff_id, queue_name=QUEUE_MAIL)
    from engine.services.digests import plan_digests

    digests = plan_digests(runtime.uow(), now, runtime.settings)
    for user_id in digests:
        runtime.queue.enqueue(digest_job, user_id, queue_name=QUEUE_MAIL)
    from engine.services.tracking_hits import sweep_hits

    sweep_hits(runtime.uow(), runtime.queue, now)  # hits whose judging job was lost
    from engine.services.imports import stop_stale_imports

    stopped = stop_stale_imports(runtime.uow(), now)  # killed mid-run: failed, resumable
    # Named fields, not asdict(): the report also carries ORM rows, which are neither small
    # nor JSON, and this dict is what RQ stores as the job's result.
    return {
        "now": now.isoformat(),
        "advanced": report.advanced,
        "deferred": report.deferred,
        "emails_queued": report.emails_queued,
        "exited": report.exited,
        "errors": report.errors,
        "reentered": reentry.enrolled,
        "message_ids": list(report.message_ids),
        "dispatched": plan.messages,
        "recovered": plan.recovered,
        "uncertain": plan.uncertain,
        "alerts": len(alerts),
        "digests": len(digests),
        "imports_stopped": len(stopped),
    }


def send_messages_job(message_ids: list[int]) -> dict[str, Any]:
    """Send a batch of outbox rows (one job per batch: RQ costs ~5 ms a job, so one job per
    recipient would cap a worker near 200 emails/s). Idempotent: rows already claimed, sent
    or no longer due are skipped by the claim."""
    from engine.services.delivery import send_batch

    runtime = current_runtime()
    report = send_batch(runtime.uow, runtime.mailer, [int(i) for i in message_ids])
    return {
        "claimed": report.claimed,
        "sent": report.sent,
        "held": report.held,
        "dropped": report.dropped,
        "retried": report.retried,
        "failed": report.failed,
        "uncertain": report.uncertain,
    }


def handoff_alerts_job(handoff_id: int) -> dict[str, Any]:
    """Send what a handoff still owes: the owner's email, the webhook, an escalation."""
    from engine.services.alerts import deliver_alerts

    runtime = current_runtime()
    report = deliver_alerts(runtime.uow, runtime.mailer, int(handoff_id), runtime.webhook)
    return {
        "emailed": report.emailed,
        "escalated": report.escalated,
        "webhook": report.webhook,
        "overdue_webhook": report.overdue_webhook,
    }


def digest_job(user_id: int) -> dict[str, Any]:
    """Send a sales user today's digest of open and overdue leads, if still owed."""
    from engine.services.digests import deliver_digest

    runtime = current_runtime()
    return {"sent": deliver_digest(runtime.uow, runtime.mailer, int(user_id))}


IMPORT_SLICE_BATCHES = 30
"""Batches one import job runs before queuing the next slice (30,000 rows, ~20 s): each job
stays far inside RQ's timeout, and the import's counts show the progress between them."""


def import_job(import_id: int) -> dict[str, Any]:
    """Run the next slice of a CSV import and queue the one after, until it is done.
    Idempotent: rows already committed are skipped, a finished import is left alone."""
    from engine.services.imports import run_import

    runtime = current_runtime()
    view = run_import(
        runtime.uow, int(import_id), runtime.clock.now, max_batches=IMPORT_SLICE_BATCHES
    )
    if not view.finished:
        runtime.queue.enqueue(import_job, int(import_id))
    return {"status": str(view.status), "processed": view.processed_rows, "total": view.total_rows}


def import_check_job(import_id: int) -> dict[str, Any]:
    """The dry run of an import's current mapping: every row judged, its progress and report
    written to the import as it goes (the page polls them); nothing else changes."""
    from engine.services.imports import run_check

    runtime = current_runtime()
    state = run_check(runtime.uow, int(import_id), runtime.clock.now)
    return {"state": state.state, "checked": state.checked, "total": state.total}


def tracking_hits_job() -> dict[str, Any]:
    """Judge the opens, clicks and honeypot hits the tracking endpoints recorded: queued by
    the first hit of a burst (one job, not one per hit), by itself while hits remain, and
    by the tick's sweep when a job was lost. Safe to run concurrently and again: hits are
    claimed with ``SKIP LOCKED``."""
    from engine.services.tracking import thresholds_from
    from engine.services.tracking_hits import run_drain

    runtime = current_runtime()
    report = run_drain(runtime.uow, runtime.queue, thresholds_from(runtime.settings))
    return {"judged": report.judged, "requeued": report.requeued}
