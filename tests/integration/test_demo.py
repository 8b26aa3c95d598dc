"""``nurture demo`` on SQLite: the engine itself fills the workspace on a virtual clock.

Every kind of record a screen shows is there and adds up (emails and their events, human and
machine opens and clicks judged by the engine's classifier, replies, pricing visits,
handoffs accepted and rejected with reasons); the same seed makes the same workspace; a
database with prospects is refused and left alone."""

from __future__ import annotations

import email
import email.policy
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from engine.clock import ManualClock
from engine.runtime import Runtime
from engine.services.accounts import create_user
from engine.services.demo import DemoRefusedError, DemoReport, load_demo
from engine.services.schemas import REJECT_REASONS
from engine.services.sequences import sync_sequences
from engine.services.template_sync import sync_templates
from engine.services.template_versions import stored_catalog
from engine.store import Enrollment, Event, Handoff, Message, MessageStatus, Prospect, UnitOfWork
from tests.support.web import web_settings
from webapp.cli import common, main

on_sqlite = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Demo:
    runtime: Runtime
    clock: ManualClock
    outbox: Path

    def uow(self) -> UnitOfWork:
        return self.runtime.uow()

    def load(self, **options: int) -> DemoReport:
        return load_demo(
            self.runtime.uow, self.runtime.mailer, self.runtime.webhook, self.clock, **options
        )


@pytest.fixture
def demo_env(database_url: str, tmp_path: Path, now) -> Iterator[Callable[[str], Demo]]:  # type: ignore[no-untyped-def]
    """A workspace as `nurture init` leaves it, with the clock 60 days before ``now``."""
    runtimes: list[Runtime] = []

    def make(name: str) -> Demo:
        url = database_url if name == "main" else f"sqlite:///{tmp_path / name}.sqlite3"
        if name != "main":
            from engine.store import upgrade

            upgrade(url)
        settings = web_settings(url, tmp_path / name, send_rate_per_domain=1000.0)
        clock = ManualClock(now - timedelta(days=60))
        runtime = Runtime.from_settings(settings, clock=clock)
        runtimes.append(runtime)
        assert sync_templates(runtime.uow(), ROOT / "templates", now).problems == []
        catalog = stored_catalog(runtime.uow())
        assert sync_sequences(runtime.uow, [ROOT / "sequences"], catalog, now).problems == []
        return Demo(runtime, clock, Path(settings.outbox_dir))

    yield make
    for runtime in runtimes:
        runtime.close()


@on_sqlite
def test_the_demo_makes_every_kind_of_record_and_they_add_up(demo_env, now) -> None:  # type: ignore[no-untyped-def]
    demo = demo_env("main")
    start = demo.clock.now()
    create_user(demo.uow(), "rep@example.com", "Rep", "sales", "correct horse battery", now)

    report = demo.load(count=120)

    assert report.prospects == 120 and demo.clock.now() == start + timedelta(days=60)
    for kind in (
        "email.opened (human)",
        "email.opened (machine)",
        "email.clicked (human)",
        "email.clicked (machine)",
        "email.replied",
        "page.visited",
    ):
        assert report.events.get(kind, 0) > 0, (kind, report.events)
    assert report.handoffs.get("accepted", 0) > 0 and report.handoffs.get("rejected", 0) > 0
    assert set(report.rejections) <= set(REJECT_REASONS) and report.rejections
    assert report.statuses.get("opportunity", 0) + report.statuses.get("customer", 0) > 0
    with demo.uow() as uow:
        session = uow.session
        sent = session.scalars(select(Message).where(Message.status == MessageStatus.SENT)).all()
        assert len(sent) == report.emails_sent == report.events["email.sent"] > 120
        enrolled = session.scalar(select(func.count(func.distinct(Enrollment.prospect_id))))
        assert enrolled == 120  # every segment has its shipped sequence
        events = session.scalars(select(Event)).all()
        assert all(
            start <= e.occurred_at.replace(tzinfo=start.tzinfo) <= demo.clock.now() for e in events
        )
        links = {m.id: set(m.links or []) for m in sent}
        for e in events:
            if e.machine:  # judged by the engine's classifier, with its reason
                assert e.machine_reason, e.type
            if e.type == "email.clicked" and not (e.data or {}).get("honeypot"):
                assert e.data["url"] in links[e.message_id]
        reasons = Counter(e.machine_reason.split(" (")[0] for e in events if e.machine)
        assert reasons["privacy proxy"] > 0  # Apple's and Gmail's
        handoffs = session.scalars(select(Handoff)).all()
        statuses = {p.id: p.status for p in session.scalars(select(Prospect))}
        owners = {p.id: p.owner_email for p in session.scalars(select(Prospect))}
        theirs = [h for h in handoffs if owners[h.prospect_id] == "rep@example.com"]
        recent = demo.clock.now() - timedelta(days=7)
        assert theirs and all(  # this week's are theirs to decide, older ones were decided
            (h.status in ("open", "overdue")) == (h.created_at.replace(tzinfo=UTC) >= recent)
            for h in theirs
        )
        for h in handoffs:
            if h.status == "accepted":  # the CRM may have moved the deal on since
                assert statuses[h.prospect_id] in ("sales_accepted", "opportunity", "customer")
                assert h.decided_by
            if h.status == "rejected":
                assert h.reject_reason in REJECT_REASONS and h.decided_by
    delivered = [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in demo.outbox.glob("*.eml")
    ]
    alerts = [m for m in delivered if m["Message-ID"].startswith("<handoff-created.")]
    assert alerts  # the owners' alerts, in the same local outbox
    to_prospects = [m for m in delivered if m not in alerts]
    assert len(to_prospects) == report.emails_sent  # the local outbox, nothing else


@on_sqlite
def test_the_same_seed_makes_the_same_workspace(demo_env) -> None:  # type: ignore[no-untyped-def]
    first = demo_env("first").load(count=20, days=14, seed=7)
    second = demo_env("second").load(count=20, days=14, seed=7)
    other = demo_env("other").load(count=20, days=14, seed=8)

    same = lambda r: (r.prospects, r.emails_sent, r.events, r.handoffs, r.rejections)  # noqa: E731
    assert same(first) == same(second)
    assert same(first) != same(other)


@on_sqlite
def test_a_database_with_prospects_is_refused_and_left_alone(demo_env, now) -> None:  # type: ignore[no-untyped-def]
    demo = demo_env("main")
    demo.load(count=10, days=7)
    with demo.uow() as uow:
        before = uow.session.scalar(select(func.count()).select_from(Event))

    with pytest.raises(DemoRefusedError, match=r"already has 10 prospects.*new database"):
        demo.load(count=10, days=7)

    with demo.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Event)) == before


def test_nurture_demo_on_the_command_line(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("NURTURE_DATABASE_URL", f"sqlite:///{tmp_path / 'demo.sqlite3'}")
    monkeypatch.setenv("NURTURE_SEQUENCES_DIR", str(ROOT / "sequences"))
    monkeypatch.setenv("NURTURE_TEMPLATES_DIR", str(ROOT / "templates"))
    monkeypatch.setenv("NURTURE_OUTBOX_DIR", str(tmp_path / "outbox"))
    monkeypatch.setenv("NURTURE_SMTP_URL", "smtp://127.0.0.1:9")  # must not be used
    common.settings.cache_clear()
    try:
        first = CliRunner().invoke(main, ["demo", "--prospects", "12", "--days", "10"])
        again = CliRunner().invoke(main, ["demo", "--prospects", "12", "--days", "10"])
    finally:
        common.settings.cache_clear()

    assert first.exit_code == 0, first.output
    assert "demo workspace ready" in first.output and "12 prospects" in first.output
    assert list((tmp_path / "outbox").glob("*.eml"))  # delivered locally, not to SMTP
    assert again.exit_code == 1
    assert "already has 12 prospects" in again.output
