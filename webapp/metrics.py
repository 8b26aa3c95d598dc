"""``GET /metrics``: the engine's state in the Prometheus text format.

Two kinds of figures, each from where it is true:

* **Computed at scrape time** from the database and the job queue (``DatabaseCollector``):
  queue depths, the tick's lag, send outcomes, delivery incidents, handoffs and SLA
  breaches. The database is the one truth all hosts share, so any web process answers the
  same figures and none is lost when a worker restarts (``engine.services.monitoring``).
* **Counted in the web processes**: how long ingest requests (the events API, the tracking
  endpoints) take, which never reaches the database. Under gunicorn each worker process
  counts its own requests; prometheus-client's multiprocess mode (enabled by
  ``webapp.gunicorn_config``, which sets ``PROMETHEUS_MULTIPROC_DIR`` before any worker
  imports the client) writes them to per-process files that every scrape sums, so whichever
  worker answers the scrape reports the whole server. Without that variable (``nurture
  up``, tests) the app keeps them in its own registry.

Access: the figures describe the business (how many emails, how many leads), so the
endpoint answers 404 unless ``NURTURE_METRICS_TOKEN`` is set, and then only to requests
carrying ``Authorization: Bearer <token>`` (Prometheus' ``authorization`` scrape option).
A token works behind any proxy, where a client-address rule would see the proxy's address.
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from collections.abc import Iterator

from flask import Blueprint, Flask, Response, abort, current_app, g, request
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from engine.runtime import Runtime
from engine.services.monitoring import (
    OUTBOX_IN_FLIGHT,
    OUTBOX_OUTCOMES,
    OperationsSnapshot,
    operations_snapshot,
)
from engine.store import HandoffStatus, IncidentKind
from webapp.extensions import get_runtime

__all__ = ["INGEST_ROUTES", "MULTIPROCESS_VARIABLE", "DatabaseCollector", "bp", "init_app"]

log = logging.getLogger(__name__)

bp = Blueprint("metrics", __name__)

MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
_EXTENSION_KEY = "nurture.metrics"

INGEST_ROUTES: dict[str, str] = {
    "api.events.post_events": "api_events",
    "tracking.open_pixel": "open",
    "tracking.click": "click",
    "tracking.honeypot": "honeypot",
    "tracking.unsubscribe_page": "unsubscribe",
    "tracking.unsubscribe_post": "unsubscribe",
}
"""Flask endpoints whose latency ``nurture_ingest_duration_seconds`` records, by label."""

INGEST_BUCKETS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
"""Seconds; fine below 50 ms, where the ingest targets are."""


class _AppMetrics:
    """One app's in-process metrics; in multiprocess mode they live in the shared files."""

    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get(MULTIPROCESS_VARIABLE))
        self.registry = CollectorRegistry(auto_describe=True)
        self.ingest = Histogram(
            "nurture_ingest_duration_seconds",
            "Time to answer an ingest request (events API, tracking endpoints), by route.",
            ["route"],
            buckets=INGEST_BUCKETS,
            registry=None if self.multiprocess else self.registry,
        )


def init_app(app: Flask) -> None:
    """Time the ingest routes of ``app`` and serve ``/metrics`` from it."""
    metrics = _AppMetrics()
    app.extensions[_EXTENSION_KEY] = metrics

    @app.before_request
    def _start_timer() -> None:
        if request.endpoint in INGEST_ROUTES:
            g.nurture_ingest_started = time.perf_counter()

    @app.teardown_request
    def _observe(_error: BaseException | None) -> None:
        started = g.pop("nurture_ingest_started", None)
        if started is not None and request.endpoint in INGEST_ROUTES:
            metrics.ingest.labels(INGEST_ROUTES[request.endpoint]).observe(
                time.perf_counter() - started
            )

    app.register_blueprint(bp)


@bp.get("/metrics")
def metrics_view() -> Response:
    runtime = get_runtime()
    _authorize(runtime.settings.metrics_token)
    app_metrics: _AppMetrics = current_app.extensions[_EXTENSION_KEY]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(runtime))
    if app_metrics.multiprocess:
        from prometheus_client.multiprocess import MultiProcessCollector

        MultiProcessCollector(registry)
    else:
        registry.register(app_metrics.registry)
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


def _authorize(token: str | None) -> None:
    """404 when metrics are not enabled (nothing to discover), 401 without the token."""
    if not token:
        abort(404)
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), token.encode()
    ):
        response = Response(
            "metrics need 'Authorization: Bearer <NURTURE_METRICS_TOKEN>'\n",
            status=401,
            mimetype="text/plain",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
        abort(response)


class DatabaseCollector:
    """Figures read from the database and the job queue when Prometheus scrapes.

    A part that cannot be reached reports ``nurture_up{component=...} 0`` instead of failing
    the whole scrape, so an alert can name it and the other figures still arrive.
    """

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "nurture_up", "1 when the component answered this scrape.", labels=["component"]
        )
        try:
            yield from self._database()
            up.add_metric(["database"], 1)
        except Exception:
            log.exception("metrics: the database figures could not be read")
            up.add_metric(["database"], 0)
        try:
            depths = self.runtime.queue.depths()
        except Exception:
            log.exception("metrics: the job queue could not be read")
            up.add_metric([self.runtime.queue.kind], 0)
        else:
            up.add_metric([self.runtime.queue.kind], 1)
            queue = GaugeMetricFamily(
                "nurture_queue_jobs", "Jobs waiting for a worker, by queue.", labels=["queue"]
            )
            for name, depth in sorted(depths.items()):
                queue.add_metric([name], depth)
            yield queue
        yield up

    def _database(self) -> Iterator[Metric]:
        snapshot = operations_snapshot(self.runtime.uow(), self.runtime.clock.now())
        yield from _tick_figures(snapshot)
        yield from _outbox_figures(snapshot)
        yield from _handoff_figures(snapshot)


def _tick_figures(snapshot: OperationsSnapshot) -> Iterator[Metric]:
    """Whether the tick keeps up: its backlog, and how long the oldest of it has waited."""
    yield GaugeMetricFamily(
        "nurture_enrollments_due",
        "Active enrollments whose next step is due (the tick's backlog).",
        value=snapshot.enrollments_due,
    )
    yield GaugeMetricFamily(
        "nurture_tick_lag_seconds",
        "How long the oldest due enrollment has waited (0 when none is due).",
        value=snapshot.tick_lag_seconds,
    )


def _outbox_figures(snapshot: OperationsSnapshot) -> Iterator[Metric]:
    """Whether the senders keep up, and how sending went: the due backlog, the emails in
    flight, how the others ended, and the delivery incidents on the way."""
    yield GaugeMetricFamily(
        "nurture_outbox_due_messages",
        "Queued emails whose send time has come (the workers' backlog).",
        value=snapshot.outbox_due,
    )
    in_flight = GaugeMetricFamily(
        "nurture_outbox_messages", "Emails on their way out, by status.", labels=["status"]
    )
    for status in OUTBOX_IN_FLIGHT:
        in_flight.add_metric([status.value], snapshot.outbox.get(status, 0))
    yield in_flight
    outcomes = CounterMetricFamily("nurture_sends", "Emails by how they ended.", labels=["outcome"])
    for status in OUTBOX_OUTCOMES:
        outcomes.add_metric([status.value], snapshot.outbox.get(status, 0))
    yield outcomes
    incidents = CounterMetricFamily(
        "nurture_send_incidents",
        "Delivery incidents: temporary failures retried, permanent failures, "
        "uncertain deliveries (a crash mid-SMTP).",
        labels=["kind"],
    )
    for kind in IncidentKind:
        incidents.add_metric([kind.value], snapshot.incidents.get(kind, 0))
    yield incidents


def _handoff_figures(snapshot: OperationsSnapshot) -> Iterator[Metric]:
    """Whether sales keeps up: handoffs made, where they stand, and the SLAs missed."""
    yield CounterMetricFamily(
        "nurture_handoffs",
        "Handoffs created (re-qualified prospects handed back to sales).",
        value=sum(snapshot.handoffs.values()),
    )
    by_status = GaugeMetricFamily(
        "nurture_handoffs_by_status", "Handoffs by current status.", labels=["status"]
    )
    for status in HandoffStatus:
        by_status.add_metric([status.value], snapshot.handoffs.get(status, 0))
    yield by_status
    yield CounterMetricFamily(
        "nurture_handoff_sla_breaches",
        "Handoffs that missed their SLA and were escalated.",
        value=snapshot.sla_breaches,
    )
    yield GaugeMetricFamily(
        "nurture_handoffs_past_due",
        "Open handoffs past their SLA deadline, not yet escalated by the tick.",
        value=snapshot.handoffs_past_due,
    )
