"""Hot paths that only read (or find nothing to do) end their unit of work with a COMMIT.

psycopg forgets every prepared statement of a connection, and its counts of uses toward
preparing one, at a ROLLBACK of an open transaction, which is what leaving a unit of work
without ``commit()`` sends. A path doing that on success (every tick's last, empty batch;
every send batch's facts) kept the next user of that pooled connection from ever reaching
prepared statements (see ``engine.store.uow.end_read``). Each test runs one such path on
its successful, nothing-to-write case and lists how its transactions ended.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, event

from engine.adapters.jobqueue import InProcessJobQueue
from engine.clock import ManualClock
from engine.config import Settings
from engine.core.bots import DEFAULTS
from engine.runtime import build_mailer
from engine.services.accounts import create_user
from engine.services.alerts import deliver_alerts
from engine.services.click_bursts import flag_bursts
from engine.services.delivery import Mailer
from engine.services.digests import deliver_digest
from engine.services.monitoring import operations_snapshot
from engine.services.policy_facts import load_policy_inputs
from engine.services.reentry import reenter_due
from engine.services.sequences import sync_sequences
from engine.services.template_sync import sync_templates
from engine.services.template_versions import stored_catalog
from engine.services.tick import tick
from engine.services.tracking_hits import drain_hits, hits_waiting, sweep_hits
from engine.store import UnitOfWork

Factory = Callable[[], UnitOfWork]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def ended(db_engine: Engine) -> Iterator[list[str]]:
    """How each transaction on the test's engine ended, in order: "commit" or "rollback"."""
    endings: list[str] = []

    def on_commit(_conn: object) -> None:
        endings.append("commit")

    def on_rollback(_conn: object) -> None:
        endings.append("rollback")

    event.listen(db_engine, "commit", on_commit)
    event.listen(db_engine, "rollback", on_rollback)
    yield endings
    event.remove(db_engine, "commit", on_commit)
    event.remove(db_engine, "rollback", on_rollback)


def test_a_tick_with_nothing_due_commits(uow_factory: Factory, ended: list[str], now: datetime):
    tick(uow_factory, now)
    assert ended == ["commit"]


def test_a_reentry_sweep_with_nothing_due_commits(
    uow_factory: Factory, ended: list[str], now: datetime
):
    reenter_due(uow_factory, now)
    assert ended == ["commit"]


def test_the_ticks_hit_sweep_commits(uow_factory: Factory, ended: list[str], now: datetime):
    assert not sweep_hits(uow_factory(), InProcessJobQueue(), now)
    assert ended == ["commit"]


def test_looking_for_waiting_hits_commits(uow_factory: Factory, ended: list[str]):
    assert not hits_waiting(uow_factory())
    assert ended == ["commit"]


def test_a_drain_finding_no_hit_commits(uow_factory: Factory, ended: list[str]):
    assert drain_hits(uow_factory()) == 0
    assert ended == ["commit"]


def test_a_click_outside_any_burst_commits(uow_factory: Factory, ended: list[str], now: datetime):
    assert flag_bursts(uow_factory(), 1, now, DEFAULTS) == 0
    assert ended == ["commit"]


def test_reading_a_send_batchs_facts_commits(uow_factory: Factory, ended: list[str], now: datetime):
    inputs = load_policy_inputs(uow_factory(), [1], Settings(), now)
    assert inputs.items == []
    assert ended == ["commit"]


def test_a_metrics_snapshot_commits(uow_factory: Factory, ended: list[str], now: datetime):
    assert operations_snapshot(uow_factory(), now).enrollments_due == 0
    assert ended == ["commit"]


@pytest.fixture
def mailer(tmp_path: Path, now: datetime) -> Mailer:
    """A mailer writing to a local outbox (nothing below sends)."""
    return build_mailer(Settings(outbox_dir=tmp_path / "outbox"), ManualClock(now))


def test_a_digest_with_nothing_open_commits(
    uow_factory: Factory, ended: list[str], mailer: Mailer, now: datetime
):
    """The user read and the inbox read commit; the day is then marked done."""
    user_id = create_user(uow_factory(), "sam@example.com", "Sam", "sales", None, now)
    ended.clear()
    assert not deliver_digest(uow_factory, mailer, user_id)
    assert ended == ["commit", "commit", "commit"]


def test_a_digest_no_longer_owed_commits(
    uow_factory: Factory, ended: list[str], mailer: Mailer, now: datetime
):
    user_id = create_user(uow_factory(), "sam@example.com", "Sam", "sales", None, now)
    deliver_digest(uow_factory, mailer, user_id)  # today's is done
    ended.clear()
    assert not deliver_digest(uow_factory, mailer, user_id)
    assert ended == ["commit"]


def test_alerts_for_a_handoff_that_owes_nothing_commit(
    uow_factory: Factory, ended: list[str], mailer: Mailer
):
    def post(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("nothing is owed")

    deliver_alerts(uow_factory, mailer, 4242, post)  # type: ignore[arg-type]
    assert ended == ["commit"]


def test_a_sync_with_nothing_changed_commits(uow_factory: Factory, ended: list[str], now: datetime):
    """``nurture sequences sync`` run again on the same folders: the stored templates read,
    each sequence's editor check and unchanged version, the unchanged scoring rules."""

    def sync() -> None:
        assert sync_templates(uow_factory(), ROOT / "templates", now).problems == []
        catalog = stored_catalog(uow_factory())
        report = sync_sequences(uow_factory, [ROOT / "sequences"], catalog, now)
        assert report.problems == []

    sync()
    ended.clear()
    sync()
    assert ended and set(ended) == {"commit"}
