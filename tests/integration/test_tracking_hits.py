"""The endpoints record a hit and answer; a job judges it: once, and never losing it."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta, timezone

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import StatementError

from engine.core.bots import RequestInfo
from engine.exceptions import NotFoundError
from engine.services.tracking_hits import CLICK, OPEN, accept_click, accept_hit, drain_hits
from engine.store import Event, Message, Prospect, TrackingHit
from tests.support.tracking_env import CHROME, LINKS, TrackingEnv, tracking_env

PERSON = RequestInfo(user_agent=CHROME, ip="84.141.27.200", method="GET")


@pytest.fixture
def env(database_url, now):  # type: ignore[no-untyped-def]
    with tracking_env(database_url, now, scoring=True) as environment:
        yield environment


def waiting(env: TrackingEnv) -> list[TrackingHit]:
    with env.uow() as uow:
        rows = list(uow.session.scalars(select(TrackingHit).order_by(TrackingHit.id)))
        uow.session.expunge_all()
        return rows


def stored_events(env: TrackingEnv) -> int:
    """Events in the database, read without draining anything first."""
    with env.uow() as uow:
        return uow.session.scalar(
            select(func.count()).select_from(Event).where(Event.type != "email.sent")
        )


def test_a_hit_is_stored_before_the_answer_and_judged_once(env):
    at = env.advance(minutes=5)
    opened = accept_hit(
        env.runtime.hit_engine, OPEN, env.pixel_path()[5:], PERSON, at, signer=env.signer
    )
    url = accept_click(env.runtime.hit_engine, env.click_path(1)[5:], PERSON, at, signer=env.signer)
    assert opened and url == LINKS[1]
    hits = waiting(env)
    assert [(h.kind, h.link_index, h.received_at) for h in hits] == [
        (OPEN, None, at),
        (CLICK, 1, at),
    ]
    assert stored_events(env) == 0  # nothing judged, scored or locked while answering

    env.advance(minutes=3)  # the job runs later: the events keep the moment of the hit
    assert drain_hits(env.uow()) == 2
    assert drain_hits(env.uow()) == 0  # a second drain finds nothing to judge twice
    events = env.events()
    assert [(e.type, e.occurred_at, e.machine) for e in events] == [
        ("email.opened", at, False),
        ("email.clicked", at, False),
    ]
    assert {e.event_id for e in env.score_entries()} == {e.id for e in events}
    assert waiting(env) == []


def test_forged_tokens_and_foreign_links_store_no_hit(env):
    at = env.advance(minutes=5)
    assert not accept_hit(env.runtime.hit_engine, OPEN, "1.forged", PERSON, at, signer=env.signer)
    real_link = env.click_path(0)[5:]
    assert not accept_hit(
        env.runtime.hit_engine, "honeypot", real_link, PERSON, at, signer=env.signer
    )
    assert waiting(env) == []


def test_a_hit_of_a_message_unsent_since_is_dropped_quietly(env):
    at = env.advance(minutes=5)
    assert accept_hit(
        env.runtime.hit_engine, OPEN, env.pixel_path()[5:], PERSON, at, signer=env.signer
    )
    with env.uow() as uow:  # as good as gone: an unsent message's links are not known
        uow.session.execute(update(Message).values(sent_at=None))
        uow.commit()
    assert drain_hits(env.uow()) == 1
    assert waiting(env) == [] and stored_events(env) == 0


def test_a_hit_held_by_a_dead_worker_is_skipped_then_judged(env):
    """A drain never waits behind a hit another worker holds (SKIP LOCKED); when that
    worker dies, its transaction rolls back and the hit is judged by the next drain."""
    if not env.runtime.uow().is_postgres:
        pytest.skip("row locks are PostgreSQL's")
    at = env.advance(minutes=5)
    accept_hit(env.runtime.hit_engine, OPEN, env.pixel_path()[5:], PERSON, at, signer=env.signer)
    dead = env.uow()
    with dead:
        dead.session.execute(select(TrackingHit).with_for_update()).all()
        assert drain_hits(env.uow()) == 0
    assert len(waiting(env)) == 1  # the "crash" lost nothing
    assert drain_hits(env.uow()) == 1
    assert [e.type for e in env.events()] == ["email.opened"]


def test_hits_do_not_wait_for_the_prospect_or_message_locks(env):
    """A burst of opens must not queue behind the row locks scoring takes: here another
    transaction holds the prospect and the message rows for update meanwhile."""
    at = env.advance(minutes=5)
    holder = env.uow()
    done = threading.Event()

    def burst() -> None:
        for _ in range(5):
            accept_hit(
                env.runtime.hit_engine, OPEN, env.pixel_path()[5:], PERSON, at, signer=env.signer
            )
        done.set()

    with holder:
        if holder.is_postgres:
            holder.session.execute(select(Prospect).with_for_update()).all()
            holder.session.execute(select(Message).with_for_update()).all()
            thread = threading.Thread(target=burst)
            thread.start()
            assert done.wait(timeout=30), "a hit waited for a row lock"
            thread.join()
    if not holder.is_postgres:
        burst()
    assert len(waiting(env)) == 5
    assert drain_hits(env.uow()) == 5
    assert len(env.events("email.opened")) == 1  # the same open again, within its minute


def test_a_hit_survives_a_dead_pooled_connection(env, caplog):
    """The hits' pool does not ping on checkout (a round trip per hit): a connection the
    database dropped (a restart, an idle timeout) fails on first use and the hit is
    written once more on a fresh one."""
    engine = env.runtime.hit_engine
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no server to drop a connection")
    at = env.advance(minutes=5)
    assert accept_hit(engine, OPEN, env.pixel_path()[5:], PERSON, at, signer=env.signer)
    with env.uow() as uow:  # ends every other session on the database, the pooled one too
        uow.session.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    with caplog.at_level(logging.INFO, logger="engine.services.hit_recording"):
        assert accept_hit(engine, OPEN, env.pixel_path()[5:], PERSON, at, signer=env.signer)
    assert "retrying once" in caplog.text  # the dead connection was met, and replaced
    url = accept_click(engine, env.click_path(2)[5:], PERSON, at, signer=env.signer)
    assert url == LINKS[2]
    assert [h.kind for h in waiting(env)] == [OPEN, OPEN, CLICK]


def test_a_click_survives_a_dead_pooled_connection(env, caplog):
    """The click's one statement, on the driver's connection itself, retried the same way:
    once, on a fresh connection, the dead one dropped from the pool."""
    engine = env.runtime.hit_engine
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no server to drop a connection")
    at = env.advance(minutes=5)
    assert accept_click(engine, env.click_path(0)[5:], PERSON, at, signer=env.signer) == LINKS[0]
    with env.uow() as uow:
        uow.session.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    with caplog.at_level(logging.INFO, logger="engine.services.hit_recording"):
        url = accept_click(engine, env.click_path(1)[5:], PERSON, at, signer=env.signer)
    assert url == LINKS[1]
    assert "retrying once" in caplog.text
    assert "could not record a click" not in caplog.text  # the retry wrote it
    assert [(h.kind, h.link_index) for h in waiting(env)] == [(CLICK, 0), (CLICK, 1)]


def test_a_hit_is_committed_when_answered_and_its_moment_kept_exactly(env):
    """The PostgreSQL path writes through psycopg itself: the row is committed before the
    answer (seen from another connection at once), the moment bound as the column binds
    it (a naive datetime refused, another zone stored as the same instant in UTC)."""
    engine = env.runtime.hit_engine
    at = env.advance(minutes=5)
    elsewhere = at.astimezone(timezone(timedelta(hours=-7)))
    assert accept_hit(engine, OPEN, env.pixel_path()[5:], PERSON, elsewhere, signer=env.signer)
    assert [(h.kind, h.received_at, h.ip) for h in waiting(env)] == [(OPEN, at, PERSON.ip)]
    with pytest.raises((ValueError, StatementError), match="naive"):
        accept_hit(
            engine, OPEN, env.pixel_path()[5:], PERSON, at.replace(tzinfo=None), signer=env.signer
        )
    assert len(waiting(env)) == 1


def test_hits_commit_without_waiting_for_the_disk_and_events_do(env):
    """The hits' connections turn ``synchronous_commit`` off (a hit's commit skips the
    WAL flush); the judging's, through the main engine, keep the server's setting."""
    if not env.runtime.uow().is_postgres:
        pytest.skip("synchronous_commit is PostgreSQL's")
    with env.runtime.hit_engine.connect() as conn:
        assert conn.scalar(text("SHOW synchronous_commit")) == "off"
    with env.uow() as uow:
        assert uow.session.scalar(text("SHOW synchronous_commit")) == "on"


def test_a_click_on_no_link_of_a_sent_message_stores_no_hit(env):
    """The click's link read and its hit are one statement on PostgreSQL: it writes the
    hit only for a sent message with a link at that index, as the two steps do on SQLite."""
    at = env.advance(minutes=5)
    engine = env.runtime.hit_engine
    for token in (env.signer.click(env.message_id, 3), env.signer.click(env.message_id + 99, 0)):
        with pytest.raises(NotFoundError):
            accept_click(engine, token, PERSON, at, signer=env.signer)
    unsent = env.add_message(sent=False)
    with pytest.raises(NotFoundError):
        accept_click(engine, env.signer.click(unsent, 0), PERSON, at, signer=env.signer)
    assert waiting(env) == []
    assert accept_click(engine, env.signer.click(env.message_id, 0), PERSON, at, signer=env.signer)
    assert [(h.kind, h.link_index) for h in waiting(env)] == [(CLICK, 0)]
