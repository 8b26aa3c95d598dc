"""``nurture inbound smtp`` (aiosmtpd) and ``nurture inbound receive``: the same service,
reached by SMTP from smtplib and by a mail server's pipe."""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.support.inbound_corpus import load
from tests.support.inbound_env import ours, prospect_state
from tests.support.tracking_env import ANA, SECRET, tracking_env
from webapp.cli import common, main

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def env(database_url, now, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("NURTURE_DATABASE_URL", database_url)
    monkeypatch.setenv("NURTURE_SECRET_KEY", SECRET)
    monkeypatch.setenv("NURTURE_STATE_DIR", str(tmp_path))
    common.settings.cache_clear()
    with tracking_env(database_url, now) as environment:
        yield environment
    common.settings.cache_clear()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def crlf(raw: bytes) -> bytes:
    """SMTP's line ends (smtplib sends bytes as they are)."""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def listening(port: int, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the command exited"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("the SMTP server did not listen")


def test_smtp_records_each_message_before_it_answers_250(env) -> None:
    addressing = ours(env.signer, env.message_id, ANA["email"])
    port = free_port()
    command = [sys.executable, "-m", "webapp.cli", "inbound", "smtp", "--port", str(port)]
    server = subprocess.Popen(command, env=dict(os.environ), cwd=ROOT, stderr=subprocess.PIPE)
    try:
        listening(port, server)
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
            refused = smtp.sendmail(
                "", [addressing.bounce], crlf(load("bounce-exchange.eml", addressing))
            )
            assert refused == {}
            smtp.sendmail(
                ANA["email"], [addressing.sender], crlf(load("reply-outlook.eml", addressing))
            )
            code, _ = smtp.docmd("RSET")
            assert code == 250
    finally:
        server.send_signal(signal.SIGTERM)
        _, errors = server.communicate(timeout=60)
    assert server.returncode == 0, errors.decode()
    state = prospect_state(env.uow(), env.prospect_id, ANA["email"])
    assert [kind for kind, _ in state.events] == ["email.bounced", "email.replied"]
    assert state.inbound == [("bounce", "processed"), ("reply", "processed")]
    assert state.suppressed == "bounced"


def test_a_pipe_delivers_standard_input_with_its_envelope_recipient(env) -> None:
    """Postfix: ``| nurture inbound receive - --recipient ${recipient}``."""
    addressing = ours(env.signer, env.message_id, ANA["email"])
    raw = load("ooo-german.eml", addressing)

    result = CliRunner().invoke(
        main,
        ["inbound", "receive", "-", "--recipient", addressing.bounce],
        input=raw,
        catch_exceptions=False,
    )

    assert result.exit_code == 0, result.output
    assert "auto_reply, processed" in result.output
    state = prospect_state(env.uow(), env.prospect_id, ANA["email"])
    assert [kind for kind, _ in state.events] == ["email.auto_replied"]
    empty = CliRunner().invoke(main, ["inbound", "receive", "-"], input=b"")
    assert empty.exit_code == 1
    assert "the message is empty" in empty.output
