"""The README's production topology, run for real on this machine.

gunicorn with two workers, two ``nurture worker`` processes and the scheduler, each in a
working directory of its own, against PostgreSQL, Redis and a real SMTP server. The
sequence is loaded by a deploy step (``nurture init`` in yet another directory); 1,000
prospects arrive over the JSON API, half of them visit the pricing page (an event over the
API) and so get the second email. Every email must arrive exactly once, and ``/metrics``
must add up across gunicorn's two processes.

No process but the deploy step gets a sequence or template file: the workers render the
template versions the deploy stored in the database.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis
from rq import Queue
from rq.registry import StartedJobRegistry
from sqlalchemy import func, select

from engine.adapters.jobqueue import WORKER_QUEUES
from engine.store import Message, UnitOfWork, make_engine, make_session_factory
from tests.support.rq_helpers import flushed_redis, redis_db_url
from tests.support.smtp_server import SmtpTestServer
from tests.support.topology import ROOT, Topology, poll

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

TOPOLOGY_REDIS_URL = redis_db_url(10)
PROSPECTS = 1_000
VISITORS = PROSPECTS // 2
CLIENTS = 4
DEADLINE_SECONDS = 300

SEQUENCE = """\
key: topology
name: "Topology run"
enroll:
  when: {field: status, eq: closed_lost}
send_window: {days: daily, from: "00:00", to: "24:00", timezone: UTC}
steps:
  - id: hello
    email: price/value-recap
    subject: "Hello {{ prospect.first_name }}"
  - wait: {up_to: 30d, until: {event: page.visited}}
  - id: pricing
    email: price/case-study
    subject: "Pricing follow-up for {{ prospect.first_name }}"
"""


@pytest.fixture
def topology(
    postgres_database_url: str, smtp_server: SmtpTestServer, tmp_path: Path
) -> Iterator[Topology]:
    with flushed_redis(TOPOLOGY_REDIS_URL):
        deployment = Topology(
            base=tmp_path,
            database_url=postgres_database_url,
            redis_url=TOPOLOGY_REDIS_URL,
            smtp_url=smtp_server.url,
            extra_env={"NURTURE_SEND_RATE_PER_DOMAIN": "100000"},
        )
        try:
            yield deployment
        finally:
            deployment.stop()


def deploy(topology: Topology, tmp_path: Path) -> str:
    """The deploy job: migrate and load the sequence from its checkout; make an API token."""
    checkout = tmp_path / "checkout"
    (checkout / "sequences").mkdir(parents=True)
    (checkout / "sequences" / "topology.yaml").write_text(SEQUENCE)
    files = {"sequences": checkout / "sequences", "templates": ROOT / "templates"}
    loaded = topology.run("deploy", "init", files=files)
    assert "1 created" in loaded, loaded
    return topology.run("deploy-token", "tokens", "create", "topology-test").strip()


def outbox(database_url: str) -> Counter[str]:
    engine = make_engine(database_url)
    try:
        with UnitOfWork(make_session_factory(engine)) as uow:
            rows = uow.session.execute(
                select(Message.status, func.count()).group_by(Message.status)
            )
            return Counter({str(status): count for status, count in rows})
    finally:
        engine.dispose()


def idle(redis_url: str) -> bool:
    """No job waiting or running on any queue: nothing more can be sent."""
    connection = Redis.from_url(redis_url)
    try:
        return all(
            Queue(name, connection=connection).count == 0
            and StartedJobRegistry(name, connection=connection).count == 0
            for name in WORKER_QUEUES
        )
    finally:
        connection.close()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_a_thousand_prospects_through_the_production_topology(
    topology: Topology, smtp_server: SmtpTestServer, tmp_path: Path
) -> None:
    token = deploy(topology, tmp_path)
    topology.start_web(workers=2)
    topology.start_worker(1)
    topology.start_worker(2)
    topology.start_scheduler(interval=1)
    deadline = time.monotonic() + DEADLINE_SECONDS
    try:
        poll(topology.ready, deadline, "the web server to be ready")
        emails = [f"p{i}@example.org" for i in range(PROSPECTS)]

        def upsert(email: str) -> bool:
            body = {"email": email, "first_name": email[:5], "status": "closed_lost"}
            status, answer = topology.request("POST", "/api/v1/prospects", body, token)
            assert status == 201, answer
            return bool(answer["enrolled"])

        with ThreadPoolExecutor(CLIENTS) as pool:
            assert all(pool.map(upsert, emails)), "every prospect enrolled"
        poll(
            lambda: len(smtp_server.accepted()) >= PROSPECTS,
            deadline,
            f"{PROSPECTS} first emails (got {len(smtp_server.accepted())})",
        )

        def visit(email: str) -> None:
            event = {"type": "page.visited", "email": email, "data": {"path": "/pricing"}}
            status, answer = topology.request("POST", "/api/v1/events", event, token)
            assert status == 201, answer

        visitors = emails[:VISITORS]
        with ThreadPoolExecutor(CLIENTS) as pool:
            list(pool.map(visit, visitors))
        expected = PROSPECTS + VISITORS
        poll(lambda: len(smtp_server.accepted()) >= expected, deadline, f"{expected} emails")
        poll(
            lambda: (
                outbox(topology.database_url) == Counter({"sent": expected})
                and idle(topology.redis_url)
            ),
            deadline,
            "the outbox to settle with every row sent and the queues idle",
        )
        topology.check_alive()
        status, metrics_text = topology.request("GET", "/metrics", token=topology.metrics_token)
    except BaseException:
        print(topology.logs())
        raise

    received = smtp_server.accepted()
    assert len(received) == expected, "nothing more arrives once the outbox has settled"
    ids = Counter(m.message_id for m in received)
    assert len(ids) == expected and max(ids.values()) == 1, "every Message-ID once"
    subjects = Counter((m.rcpt_tos, str(m.message["Subject"]).split(" ")[0]) for m in received)
    assert max(subjects.values()) == 1, "no recipient got the same step twice"
    for i, email in enumerate(emails):
        assert subjects[((email,), "Hello")] == 1, email
        assert subjects[((email,), "Pricing")] == (1 if i < VISITORS else 0), email

    assert status == 200
    figures = samples(metrics_text)
    assert figures[("nurture_sends_total", (("outcome", "sent"),))] == expected
    assert figures[("nurture_outbox_due_messages", ())] == 0
    # Counted by two gunicorn processes, summed by whichever one answered the scrape.
    assert (
        figures[("nurture_ingest_duration_seconds_count", (("route", "api_events"),))] == VISITORS
    )
    web_metric_files = list((topology.base / "web").glob("nurture-prometheus-*/histogram_*.db"))
    print(
        f"\ntopology: {PROSPECTS} prospects, {len(received)} emails, "
        f"{len(web_metric_files)} gunicorn processes counted ingest requests"
    )


def test_a_worker_with_no_files_sends_from_the_database(
    topology: Topology, smtp_server: SmtpTestServer, tmp_path: Path
) -> None:
    token = deploy(topology, tmp_path)
    topology.start_web(workers=1)
    topology.start_worker(1)  # nothing but an empty working directory
    topology.start_scheduler(interval=1)
    deadline = time.monotonic() + 60
    poll(topology.ready, deadline, "the web server to be ready")
    body = {"email": "solo@example.org", "first_name": "Solo", "status": "closed_lost"}
    assert topology.request("POST", "/api/v1/prospects", body, token)[0] == 201

    def settled() -> bool:
        counts = outbox(topology.database_url)
        return counts["sent"] + counts["failed"] == 1

    poll(settled, deadline, "the one email to be sent or given up")
    assert outbox(topology.database_url) == Counter({"sent": 1})
    assert [m.rcpt_tos for m in smtp_server.accepted()] == [("solo@example.org",)]
