"""A web app on a test database with one sent email, for the tracking endpoint tests.

The prospect is enrolled by the real services (the shipped-style ``lost-on-price``
sequence); its first message is then marked sent with known links, as delivery would, so
tests control exactly what the message contained and when it went out.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from engine.adapters.jobqueue import InProcessJobQueue
from engine.clock import ManualClock
from engine.config import Settings
from engine.mail.links import honeypot_url, open_pixel_url, unsubscribe_url
from engine.mail.tokens import TokenSigner
from engine.runtime import Runtime
from engine.services.prospects import upsert_prospect
from engine.services.scoring import save_scoring
from engine.store import Event, Message, MessageStatus, ScoreEntry, UnitOfWork
from tests.support.sequences import PRICE, store
from webapp import create_app

ROOT = Path(__file__).resolve().parents[2]
BASE_URL = "https://nurture.example"
SECRET = "tracking-test-secret"
LINKS = [
    "https://acme.example/pricing?utm_source=nurture&utm_medium=email",
    "https://acme.example/case-studies/initech",
    "https://acme.example/book-a-call",
]
ANA = {
    "email": "ana@initech.example",
    "first_name": "Ana",
    "company": "Initech",
    "status": "closed_lost",
    "lost_reason": "price",
}
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)


@dataclass
class TrackingEnv:
    app: Flask
    client: FlaskClient
    runtime: Runtime
    clock: ManualClock
    signer: TokenSigner
    message_id: int
    prospect_id: int
    enrollment_id: int
    sent_at: datetime

    def uow(self) -> UnitOfWork:
        return self.runtime.uow()

    def advance(self, **delta: float) -> datetime:
        return self.clock.advance(timedelta(**delta))

    def path(self, url: str) -> str:
        assert url.startswith(BASE_URL)
        return url[len(BASE_URL) :]

    def click_path(self, index: int, message_id: int | None = None) -> str:
        token = self.signer.click(message_id or self.message_id, index)
        return f"/t/c/{token}"

    def pixel_path(self, message_id: int | None = None) -> str:
        return self.path(open_pixel_url(BASE_URL, message_id or self.message_id, self.signer))

    def honeypot_path(self) -> str:
        return self.path(honeypot_url(BASE_URL, self.message_id, self.signer))

    def unsubscribe_path(self, message_id: int | None = None) -> str:
        return self.path(unsubscribe_url(BASE_URL, message_id or self.message_id, self.signer))

    def get(self, path: str, agent: str = CHROME, ip: str = "84.141.27.200", **kw: Any) -> Any:
        """GET ``path``; a tracking hit is then judged (its job drained) before returning,
        so a test sees the event the hit leads to, as once when it was recorded inline."""
        response = self.client.get(
            path, headers={"User-Agent": agent}, environ_base={"REMOTE_ADDR": ip}, **kw
        )
        if path.startswith("/t/"):
            self.drain()
        return response

    def drain(self) -> None:
        """Wait until the queued jobs, the tracking hits' judging among them, are done
        (in-process queue; on RQ the test runs its worker itself)."""
        if isinstance(self.runtime.queue, InProcessJobQueue):
            assert self.runtime.queue.join(timeout=60), "the tracking job did not finish"

    def events(self, event_type: str | None = None) -> list[Event]:
        self.drain()
        with self.uow() as uow:
            stmt = select(Event).where(Event.type != "email.sent").order_by(Event.id)
            if event_type:
                stmt = stmt.where(Event.type == event_type)
            rows = list(uow.session.scalars(stmt))
            uow.session.expunge_all()
            return rows

    def score_entries(self) -> list[ScoreEntry]:
        self.drain()
        with self.uow() as uow:
            rows = list(uow.session.scalars(select(ScoreEntry).order_by(ScoreEntry.id)))
            uow.session.expunge_all()
            return rows

    def add_message(self, *, sent: bool, links: list[str] | None = None) -> int:
        """Another outbox row on the same enrollment (a later step), sent or still queued."""
        with self.uow() as uow:
            message = Message(
                enrollment_id=self.enrollment_id,
                prospect_id=self.prospect_id,
                sequence_version_id=uow.session.scalar(
                    select(Message.sequence_version_id).where(Message.id == self.message_id)
                ),
                step_id="case-study",
                iteration=1,
                template_key="price/case-study",
                status=MessageStatus.SENT if sent else MessageStatus.QUEUED,
                not_before=self.clock.now(),
                sent_at=self.clock.now() if sent else None,
                links=links if sent else None,
                to_email=ANA["email"] if sent else None,
            )
            uow.session.add(message)
            uow.commit()
            return message.id


@contextmanager
def tracking_env(
    database_url: str, now: datetime, *, scoring: bool = False, **overrides: Any
) -> Iterator[TrackingEnv]:
    """The app with Ana's first email sent at ``now``; ``scoring`` loads the shipped rules;
    ``overrides`` change settings."""
    settings = Settings(
        database_url=database_url,
        secret_key=SECRET,
        base_url=BASE_URL,
        company_name="Acme Analytics",
        templates_dir=ROOT / "templates",
    ).with_overrides(**overrides)
    clock = ManualClock(now)
    runtime = Runtime.from_settings(settings, clock=clock)
    try:
        store(runtime.uow, PRICE, now)
        if scoring:
            source = (ROOT / "sequences" / "scoring.yaml").read_text(encoding="utf-8")
            save_scoring(runtime.uow(), source, "scoring.yaml", now)
        upsert_prospect(runtime.uow(), ANA, now)
        with runtime.uow() as uow:
            message = uow.session.scalars(select(Message)).one()
            ids = (message.id, message.prospect_id, message.enrollment_id)
            uow.session.execute(
                update(Message)
                .where(Message.id == message.id)
                .values(status=MessageStatus.SENT, sent_at=now, links=LINKS, to_email=ANA["email"])
            )
            uow.commit()
        app = create_app(runtime=runtime)
        yield TrackingEnv(
            app=app,
            client=app.test_client(),
            runtime=runtime,
            clock=clock,
            signer=TokenSigner(SECRET),
            message_id=ids[0],
            prospect_id=ids[1],
            enrollment_id=ids[2],
            sent_at=now,
        )
    finally:
        runtime.close()
