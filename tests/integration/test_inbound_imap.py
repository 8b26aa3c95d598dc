"""``nurture inbound imap`` against a real Dovecot: each message recorded once, moved only
after it is recorded, nothing lost or processed twice across a crash or a SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from imapclient import IMAPClient
from sqlalchemy import func, select

from engine.config import Settings
from engine.inbound.imap import ImapConfig, ImapPoller
from engine.services.inbound import receive
from engine.store import Event, InboundMessage
from tests.support.dovecot import Mailbox
from tests.support.inbound_corpus import load
from tests.support.inbound_env import ours, prospect_state, renamed
from tests.support.tracking_env import ANA, SECRET, tracking_env

DONE = "Nurture-processed"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(database_url, now):  # type: ignore[no-untyped-def]
    with tracking_env(database_url, now, scoring=True) as environment:
        environment.advance(hours=2)
        yield environment


def config(box: Mailbox, poll: float = 0.2) -> ImapConfig:
    return ImapConfig.from_url(box.url, done_folder=DONE, poll_seconds=poll, max_bytes=10**7)


def deliverer(env):  # type: ignore[no-untyped-def]
    settings = Settings(secret_key=SECRET)

    def deliver(raw: bytes) -> object:
        return receive(env.uow(), raw, transport="imap", now=env.clock.now(), settings=settings)

    return deliver


def mail(env, *names: str) -> list[bytes]:  # type: ignore[no-untyped-def]
    addressing = ours(env.signer, env.message_id, ANA["email"])
    return [load(name, addressing) for name in names]


def counts(env) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """(inbound rows, events that are not the send itself)."""
    with env.uow() as uow:
        rows = uow.session.scalar(select(func.count()).select_from(InboundMessage))
        events = uow.session.scalar(
            select(func.count()).select_from(Event).where(Event.type != "email.sent")
        )
        return int(rows or 0), int(events or 0)


def test_a_reply_an_out_of_office_and_a_bounce_are_read_moved_and_acted_on(env, dovecot):
    box = dovecot.mailbox()
    box.append(*mail(env, "ooo-exchange.eml", "reply-gmail.eml", "bounce-postfix.eml"))
    moved = drain_once(ImapPoller(config(box), deliverer(env), threading.Event()))

    assert moved == 3
    assert (box.count(), box.count(DONE)) == (0, 3)
    state = prospect_state(env.uow(), env.prospect_id, ANA["email"])
    assert [kind for kind, _ in state.events] == [
        "email.auto_replied",
        "email.replied",
        "email.bounced",
    ]
    assert state.suppressed == "bounced"


class CrashError(Exception):
    """The process dies right after the service committed, before the IMAP move."""


def test_a_crash_after_recording_loses_nothing_and_repeats_nothing(env, dovecot):
    box = dovecot.mailbox()
    box.append(*mail(env, "reply-outlook.eml", "unsubscribe-mailto.eml", "arf-yahoo.eml"))
    deliver = deliverer(env)
    delivered = []

    def crashing(raw: bytes) -> object:
        result = deliver(raw)
        delivered.append(result)
        if len(delivered) == 2:
            raise CrashError
        return result

    with pytest.raises(CrashError):
        drain_once(ImapPoller(config(box), crashing, threading.Event()))
    assert (box.count(), counts(env)) == (3, (2, 2))  # recorded two, moved none

    drain_once(ImapPoller(config(box), deliver, threading.Event()))

    assert (box.count(), box.count(DONE)) == (0, 3)
    assert counts(env) == (3, 3)  # each message recorded and acted on once


def drain_once(poller: ImapPoller) -> int:
    with poller.connected() as client:
        return poller.drain(client)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_done_folder_created_by_another_poller_meanwhile_is_not_an_error(
    env, dovecot, monkeypatch
):
    """Two pollers starting together both see no folder; the loser's CREATE gets
    [ALREADYEXISTS] from Dovecot, and that pass must still read the mail, not wait a whole
    re-check period (CI once lost 90 s to exactly this)."""
    box = dovecot.mailbox()
    box.append(*mail(env, "reply-apple-mail.eml"))
    with box.client() as other:
        other.create_folder(DONE)  # the other poller won the race
    real = IMAPClient.folder_exists
    checks: list[str] = []

    def stale_first_answer(self: IMAPClient, name: str) -> bool:
        checks.append(name)  # the first check ran before the other poller's CREATE
        return len(checks) > 1 and real(self, name)

    monkeypatch.setattr(IMAPClient, "folder_exists", stale_first_answer)

    assert drain_once(ImapPoller(config(box), deliverer(env), threading.Event())) == 1
    monkeypatch.undo()
    assert (box.count(), box.count(DONE), len(checks)) == (0, 1, 2)


def test_idle_reads_mail_that_arrives_while_it_waits(env, dovecot):
    """The re-check period is 25 minutes: only IDLE can bring the message in this soon."""
    box = dovecot.mailbox()
    stop = threading.Event()
    poller = ImapPoller(config(box, poll=3600), deliverer(env), stop)
    thread = threading.Thread(target=poller.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: box.has(DONE), "the poller connected (it creates its folder)")
        box.append(*mail(env, "reply-apple-mail.eml"))
        wait_for(lambda: box.count(DONE) == 1, "the message moved")
    finally:
        stop.set()
        box.append(b"Subject: wake up\r\n\r\nends the IDLE at once")
        thread.join(timeout=60)
    assert not thread.is_alive()
    assert prospect_state(env.uow(), env.prospect_id, ANA["email"]).events[0][0] == (
        "email.replied"
    )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_command_killed_mid_run_and_restarted_loses_and_repeats_nothing(
    env, dovecot, database_url, tmp_path
):
    box = dovecot.mailbox()
    raw = mail(env, "reply-gmail.eml", "ooo-german.eml", "bounce-postfix-delayed.eml")
    messages = [renamed(raw[i % 3], i) for i in range(12)]
    box.append(*messages)
    environ = {
        **os.environ,
        "NURTURE_DATABASE_URL": database_url,
        "NURTURE_SECRET_KEY": SECRET,
        "NURTURE_INBOUND_IMAP_URL": box.url,
        "NURTURE_INBOUND_IMAP_POLL_SECONDS": "0.2",
        "NURTURE_STATE_DIR": str(tmp_path),
    }
    command = [sys.executable, "-m", "webapp.cli", "inbound", "imap"]

    first = subprocess.Popen(command, env=environ, cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: counts(env)[0] >= 3, "some messages recorded")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert box.count() > 0, "killed too late to prove anything: all were moved"

    second = subprocess.Popen(command, env=environ, cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: box.count() == 0, "the mailbox drained")
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=60) == 0

    assert box.count(DONE) == 12
    rows, _ = counts(env)
    assert rows == 12
    with env.uow() as uow:
        ids = uow.session.scalars(select(InboundMessage.dedupe_key)).all()
    assert len(set(ids)) == 12


def wait_for(condition, what: str, timeout: float = 90.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
