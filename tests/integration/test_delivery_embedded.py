"""Laptop mode: no Redis, no SMTP. The same jobs run on the in-process queue and the email
lands in the local outbox that /outbox shows."""

from __future__ import annotations

from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

import pytest
from sqlalchemy import select

from engine.adapters.jobqueue import InProcessJobQueue
from engine.clock import ManualClock
from engine.config import Settings
from engine.mail.catalog import FileTemplateCatalog
from engine.runtime import Runtime
from engine.services.prospects import upsert_prospect
from engine.services.sequences import sync_sequences
from engine.services.template_sync import sync_templates
from engine.store import Message, MessageStatus, upgrade
from workers.jobs import tick_job

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_in_process_queue_sends_to_the_local_outbox(database_url, tmp_path, now):
    upgrade(database_url)
    settings = Settings(
        database_url=database_url,
        templates_dir=ROOT / "templates",
        outbox_dir=tmp_path / "outbox",
        secret_key="laptop",
    )
    runtime = Runtime.from_settings(settings, clock=ManualClock(now))
    assert isinstance(runtime.queue, InProcessJobQueue)
    try:
        catalog = FileTemplateCatalog(settings.templates_dir)
        sync_templates(runtime.uow(), settings.templates_dir, now)
        sync_sequences(runtime.uow, [ROOT / "sequences"], catalog, now)
        upsert_prospect(
            runtime.uow(),
            {"email": "ana@example.com", "status": "closed_lost", "lost_reason": "budget"},
            now,
        )
        runtime.queue.enqueue(tick_job, now.isoformat())
        assert runtime.queue.join(timeout=30)
        [path] = list(settings.outbox_dir.glob("*.eml"))
        mail = message_from_bytes(path.read_bytes(), policy=default_policy)
        assert mail["To"] == "ana@example.com"
        assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        with runtime.uow() as uow:
            assert uow.session.scalars(select(Message.status)).all() == [MessageStatus.SENT]
    finally:
        runtime.close()


class CollectingLimiter:
    """A rate limiter that lets everything through and remembers the keys it was asked."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    def acquire(self, key: str) -> None:
        self.keys.append(key)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_send_rate_is_counted_per_recipient_domain(database_url, tmp_path, now):
    """Issue #7.6: the limit protects the receiving servers, so its key is the domain mail
    goes *to* (it was the sender's, the same for every send)."""
    upgrade(database_url)
    settings = Settings(
        database_url=database_url,
        templates_dir=ROOT / "templates",
        outbox_dir=tmp_path / "outbox",
        secret_key="laptop",
        mail_from="Acme <news@acme.example>",
    )
    limiter = CollectingLimiter()
    runtime = Runtime.from_settings(settings, clock=ManualClock(now), limiter=limiter)
    try:
        sync_templates(runtime.uow(), settings.templates_dir, now)
        sync_sequences(
            runtime.uow, [ROOT / "sequences"], FileTemplateCatalog(ROOT / "templates"), now
        )
        for email in ("ana@Example.com", "bo@corp.test", "cy@example.com"):
            lost = {"email": email, "status": "closed_lost", "lost_reason": "budget"}
            upsert_prospect(runtime.uow(), lost, now)
        runtime.queue.enqueue(tick_job, now.isoformat())
        assert runtime.queue.join(timeout=30)
        assert sorted(limiter.keys) == ["corp.test", "example.com", "example.com"]
    finally:
        runtime.close()
