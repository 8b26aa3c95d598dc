"""``GET /metrics`` (Prometheus text format) and ``GET /readyz``, on both databases.

The figures are checked against rows the test wrote, so each one is proved to come from
the database, and the ingest histogram against requests the test made.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

from engine.clock import ManualClock
from engine.config import Settings
from engine.runtime import Runtime
from engine.store import (
    EnrollmentStatus,
    Handoff,
    HandoffStatus,
    IncidentKind,
    MessageIncident,
    MessageStatus,
    downgrade,
    upgrade,
)
from engine.store.migrate import schema_state
from tests.support.rows import add_enrollment, add_message, add_prospect, add_sequence
from tests.support.rq_helpers import UNREACHABLE_REDIS_URL, flushed_redis, redis_db_url
from webapp import create_app
from webapp.extensions import get_runtime

TOKEN = "scrape-me"
METRICS_REDIS_URL = redis_db_url(9)


@pytest.fixture
def make_app(now: datetime) -> Iterator[Any]:
    apps: list[Flask] = []

    def make(database_url: str, **overrides: Any) -> Flask:
        settings = Settings().with_overrides(
            **{"database_url": database_url, "secret_key": "s", "metrics_token": TOKEN, **overrides}
        )
        app = create_app(runtime=Runtime.from_settings(settings, clock=ManualClock(now)))
        app.config["TESTING"] = True
        apps.append(app)
        return app

    yield make
    for app in apps:
        get_runtime(app).close()


def scrape(app: Flask) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = app.test_client().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/plain"
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def seed(app: Flask, now: datetime) -> None:
    """Three due enrollments (the oldest 90 s late), one not due, one ended; messages in
    every status; two incidents; handoffs open, past due, escalated and accepted."""
    runtime = get_runtime(app)
    with runtime.uow() as uow:
        session = uow.session
        _, version = add_sequence(session)
        enrollments = []
        for late in (90, 30, 0):
            prospect = add_prospect(session)
            enrollments.append(
                add_enrollment(
                    session, prospect, version, now, next_run_at=now - timedelta(seconds=late)
                )
            )
        add_enrollment(
            session, add_prospect(session), version, now, next_run_at=now + timedelta(hours=1)
        )
        add_enrollment(
            session,
            add_prospect(session),
            version,
            now,
            status=EnrollmentStatus.COMPLETED,
            next_run_at=now - timedelta(days=9),
        )
        statuses = [
            (MessageStatus.QUEUED, now - timedelta(minutes=1)),
            (MessageStatus.QUEUED, now + timedelta(hours=2)),
            (MessageStatus.SENDING, now),
            (MessageStatus.SENT, now),
            (MessageStatus.SENT, now),
            (MessageStatus.SENT, now),
            (MessageStatus.FAILED, now),
            (MessageStatus.SUPPRESSED, now),
        ]
        messages = [
            add_message(
                session, enrollments[i % 3], now, step_id=f"s{i}", status=status, not_before=at
            )
            for i, (status, at) in enumerate(statuses)
        ]
        session.add_all(
            [
                MessageIncident(
                    message_id=messages[6].id, kind=IncidentKind.SEND_FAILED, detail="550"
                ),
                MessageIncident(message_id=messages[3].id, kind=IncidentKind.RETRIED, detail="451"),
            ]
        )
        prospects = [add_prospect(session) for _ in range(4)]
        session.add_all(
            [
                Handoff(prospect_id=prospects[0].id, score=70, due_at=now + timedelta(hours=4)),
                Handoff(prospect_id=prospects[1].id, score=70, due_at=now - timedelta(hours=1)),
                Handoff(
                    prospect_id=prospects[2].id,
                    score=80,
                    status=HandoffStatus.OVERDUE,
                    due_at=now - timedelta(days=1),
                    escalated_at=now - timedelta(hours=20),
                ),
                Handoff(
                    prospect_id=prospects[3].id,
                    score=90,
                    status=HandoffStatus.ACCEPTED,
                    due_at=now - timedelta(days=2),
                ),
            ]
        )
        uow.commit()


def test_metrics_report_what_the_database_holds(
    database_url: str, make_app: Any, now: datetime
) -> None:
    app = make_app(database_url)
    seed(app, now)

    samples = scrape(app)

    assert value(samples, "nurture_enrollments_due") == 3
    assert value(samples, "nurture_tick_lag_seconds") == 90
    assert value(samples, "nurture_outbox_due_messages") == 1
    assert value(samples, "nurture_outbox_messages", status="queued") == 2
    assert value(samples, "nurture_outbox_messages", status="sending") == 1
    assert value(samples, "nurture_outbox_messages", status="transmitting") == 0
    assert value(samples, "nurture_sends_total", outcome="sent") == 3
    assert value(samples, "nurture_sends_total", outcome="failed") == 1
    assert value(samples, "nurture_sends_total", outcome="suppressed") == 1
    assert value(samples, "nurture_sends_total", outcome="cancelled") == 0
    assert value(samples, "nurture_send_incidents_total", kind="send_failed") == 1
    assert value(samples, "nurture_send_incidents_total", kind="retried") == 1
    assert value(samples, "nurture_send_incidents_total", kind="uncertain_delivery") == 0
    assert value(samples, "nurture_handoffs_total") == 4
    assert value(samples, "nurture_handoffs_by_status", status="open") == 2
    assert value(samples, "nurture_handoffs_by_status", status="overdue") == 1
    assert value(samples, "nurture_handoffs_by_status", status="accepted") == 1
    assert value(samples, "nurture_handoff_sla_breaches_total") == 1
    assert value(samples, "nurture_handoffs_past_due") == 1
    assert value(samples, "nurture_up", component="database") == 1
    assert value(samples, "nurture_up", component="in-process") == 1
    assert value(samples, "nurture_queue_jobs", queue="nurture-jobs") == 0


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_tick_lag_is_zero_when_nothing_is_due(database_url: str, make_app: Any) -> None:
    samples = scrape(make_app(database_url))

    assert value(samples, "nurture_enrollments_due") == 0
    assert value(samples, "nurture_tick_lag_seconds") == 0


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_ingest_latency_is_a_histogram_per_route(database_url: str, make_app: Any) -> None:
    app = make_app(database_url)
    client = app.test_client()
    for _ in range(3):
        client.get("/t/o/not-a-valid-token")
    client.get("/t/c/not-a-valid-token")
    # Refused before the view (no token): still an ingest request that took time to answer.
    client.post("/api/v1/events", json={"type": "page.visited", "email": "a@example.com"})
    client.get("/healthz")  # not an ingest route

    samples = scrape(app)

    assert value(samples, "nurture_ingest_duration_seconds_count", route="open") == 3
    assert value(samples, "nurture_ingest_duration_seconds_count", route="click") == 1
    assert value(samples, "nurture_ingest_duration_seconds_count", route="api_events") == 1
    assert value(samples, "nurture_ingest_duration_seconds_bucket", route="open", le="+Inf") == 3
    assert not any(labels and dict(labels).get("route") == "healthz" for _, labels in samples)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_metrics_are_off_without_a_token_and_need_it_when_on(
    database_url: str, make_app: Any
) -> None:
    off = make_app(database_url, metrics_token=None).test_client()
    assert off.get("/metrics").status_code == 404
    assert off.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 404

    on = make_app(database_url).test_client()
    missing = on.get("/metrics")
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert on.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert on.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
    assert on.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


@pytest.mark.redis
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_queue_depths_come_from_redis(database_url: str, make_app: Any) -> None:
    from workers.jobs import send_messages_job, tick_job

    with flushed_redis(METRICS_REDIS_URL):
        app = make_app(database_url, redis_url=METRICS_REDIS_URL)
        queue = get_runtime(app).queue
        queue.enqueue(send_messages_job, [1, 2], queue_name="nurture-mail")
        queue.enqueue(send_messages_job, [3], queue_name="nurture-mail")
        queue.enqueue(tick_job, queue_name="nurture-default")

        samples = scrape(app)

    assert value(samples, "nurture_queue_jobs", queue="nurture-mail") == 2
    assert value(samples, "nurture_queue_jobs", queue="nurture-default") == 1
    assert value(samples, "nurture_up", component="redis") == 1


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_unreachable_part_is_reported_not_fatal(database_url: str, make_app: Any) -> None:
    app = make_app(database_url, redis_url=UNREACHABLE_REDIS_URL)

    samples = scrape(app)

    assert value(samples, "nurture_up", component="redis") == 0
    assert value(samples, "nurture_up", component="database") == 1
    assert value(samples, "nurture_enrollments_due") == 0


def test_readyz_needs_a_migrated_database(database_url: str, make_app: Any) -> None:
    client = make_app(database_url).test_client()
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json() == {"status": "ready", "database": "ok", "queue": "in-process"}

    downgrade(database_url, "-1")
    behind = client.get("/readyz")
    assert behind.status_code == 503
    assert behind.get_json()["failing"] == ["database"]
    assert "nurture init" in behind.get_json()["database"]
    assert client.get("/healthz").status_code == 200, "alive, only not ready"

    upgrade(database_url)
    assert client.get("/readyz").status_code == 200


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_readyz_stays_ready_when_a_newer_release_migrated(database_url: str, make_app: Any) -> None:
    from sqlalchemy import text

    app = make_app(database_url)
    with get_runtime(app).engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'from_the_future'"))

    response = app.test_client().get("/readyz")

    assert response.status_code == 200
    assert response.get_json()["database"] == "migrated by a newer release"
    assert schema_state(None) == "behind"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_readyz_503_when_redis_is_unreachable(database_url: str, make_app: Any) -> None:
    response = make_app(database_url, redis_url=UNREACHABLE_REDIS_URL).test_client().get("/readyz")

    assert response.status_code == 503
    assert response.get_json()["failing"] == ["redis"]


def test_readyz_503_when_the_database_is_unreachable(make_app: Any) -> None:
    response = make_app("postgresql://postgres@127.0.0.1:1/nurture").test_client().get("/readyz")

    assert response.status_code == 503
    assert response.get_json()["database"] == "unreachable"


def test_the_gunicorn_config_sets_multiprocess_mode_before_the_client_loads(
    tmp_path: Path,
) -> None:
    """prometheus-client picks its value store when first imported: if gunicorn's master
    imported it before the variable was set, every worker would count alone."""
    probe = (
        "import os, sys\n"
        "import webapp.gunicorn_config as conf\n"
        "print('prometheus_client' in sys.modules)\n"
        "print(os.environ['PROMETHEUS_MULTIPROC_DIR'] == conf._owned_metrics_dir)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    result = subprocess.run(
        [sys.executable, "-c", probe], env=env, cwd=tmp_path, capture_output=True, text=True
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True"]
    assert list(tmp_path.iterdir()) == [], "loading the config wrote nothing"
