"""SmtpTransport against a real SMTP server: one reused connection, the three kinds of
failure the delivery code tells apart, and transparent reconnection."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from engine.mail.mime import build_message
from engine.mail.transport import (
    PermanentSendError,
    SmtpTransport,
    TransientSendError,
    UncertainSendError,
)
from tests.support.smtp_server import SmtpTestServer

pytest_plugins = ("tests.support.smtp_fixtures",)

SENDER = "dana@nurture.test"


def message(n: int, to: str = "zoe@acme.test", text: str | None = None) -> bytes:
    return build_message(
        from_addr=SENDER,
        from_name="Dana",
        to_addr=to,
        reply_to=None,
        subject=f"Message {n} — ünïcödé",
        html=f"<html><body><p>Hello {n}</p></body></html>",
        text=text if text is not None else f"Hello {n}\n",
        message_id=f"<n{n}.0123456789abcdef@nurture.test>",
        date=datetime(2026, 3, 2, 10, 0, tzinfo=UTC),
        list_unsubscribe_url=f"https://n.test/u/{n}.sig",
        list_unsubscribe_mailto="mailto:unsubscribe@nurture.test",
    )


@pytest.fixture
def transport(smtp_server: SmtpTestServer) -> Iterator[SmtpTransport]:
    transport = SmtpTransport.from_url(smtp_server.url)
    yield transport
    transport.close()


def test_one_connection_carries_fifty_messages(
    smtp_server: SmtpTestServer, transport: SmtpTransport
) -> None:
    sent = {n: message(n) for n in range(50)}
    for raw in sent.values():
        transport.send(SENDER, "zoe@acme.test", raw)

    received = smtp_server.wait_for(50)
    assert smtp_server.connections == 1
    assert {m.connection for m in received} == {1}
    by_id = smtp_server.by_message_id()
    for n, raw in sent.items():
        got = by_id[f"<n{n}.0123456789abcdef@nurture.test>"]
        assert got.raw.rstrip(b"\r\n") == raw.rstrip(b"\r\n")
        assert got.mail_from == SENDER
        assert got.rcpt_tos == ("zoe@acme.test",)
        assert str(got.message["Subject"]) == f"Message {n} — ünïcödé"


def test_dots_and_from_lines_survive_smtp(
    smtp_server: SmtpTestServer, transport: SmtpTransport
) -> None:
    text = ".\n..two dots\n.\nFrom me\nend"

    transport.send(SENDER, "zoe@acme.test", message(1, text=text))

    (got,) = smtp_server.wait_for(1)
    plain = next(iter(got.message.iter_parts()))
    assert plain.get_content().replace("\r\n", "\n") == text  # type: ignore[union-attr]


def test_a_451_is_transient_and_the_connection_stays_usable(
    smtp_server: SmtpTestServer, transport: SmtpTransport
) -> None:
    smtp_server.fail_with(451, "4.3.0 try again later", times=1)

    with pytest.raises(TransientSendError) as caught:
        transport.send(SENDER, "zoe@acme.test", message(1))
    assert not isinstance(caught.value, UncertainSendError)
    assert caught.value.code == 451
    assert caught.value.smtp_message == "4.3.0 try again later"

    transport.send(SENDER, "zoe@acme.test", message(1))
    assert len(smtp_server.wait_for(1)) == 1
    assert smtp_server.connections == 1


def test_a_refused_recipient_is_a_permanent_hard_bounce(
    smtp_server: SmtpTestServer, transport: SmtpTransport
) -> None:
    smtp_server.refuse_recipient("gone@acme.test", 550, "5.1.1 mailbox unavailable")

    with pytest.raises(PermanentSendError) as caught:
        transport.send(SENDER, "gone@acme.test", message(1, to="gone@acme.test"))
    assert caught.value.recipient_refused is True
    assert caught.value.code == 550
    assert "5.1.1 mailbox unavailable" in str(caught.value)

    transport.send(SENDER, "zoe@acme.test", message(2))  # RSET left the session clean
    (got,) = smtp_server.wait_for(1)
    assert got.rcpt_tos == ("zoe@acme.test",)
    assert smtp_server.connections == 1


def test_a_refused_message_is_permanent_but_not_a_bounce(
    smtp_server: SmtpTestServer, transport: SmtpTransport
) -> None:
    smtp_server.fail_with(554, "5.7.1 message rejected as spam")

    with pytest.raises(PermanentSendError) as caught:
        transport.send(SENDER, "zoe@acme.test", message(1))
    assert caught.value.recipient_refused is False
    assert caught.value.code == 554


def test_a_dropped_idle_connection_is_reopened_transparently(
    smtp_server: SmtpTestServer, transport: SmtpTransport
) -> None:
    transport.send(SENDER, "zoe@acme.test", message(1))
    smtp_server.wait_for(1)

    smtp_server.drop_connections()
    transport.send(SENDER, "zoe@acme.test", message(2))

    received = smtp_server.wait_for(2)
    assert [m.connection for m in received] == [1, 2]
    assert smtp_server.connections == 2


def test_a_connection_lost_during_data_is_uncertain_and_never_resent(
    smtp_server: SmtpTestServer, transport: SmtpTransport
) -> None:
    smtp_server.drop_during_data()

    with pytest.raises(UncertainSendError):
        transport.send(SENDER, "zoe@acme.test", message(1))
    assert smtp_server.accepted() == []  # and it was not quietly sent again

    transport.send(SENDER, "zoe@acme.test", message(2))  # a new connection next time
    assert [m.message_id for m in smtp_server.wait_for(1)] == ["<n2.0123456789abcdef@nurture.test>"]


def test_no_server_is_transient(smtp_server: SmtpTestServer) -> None:
    url = smtp_server.url
    smtp_server.stop()
    transport = SmtpTransport.from_url(url)

    with pytest.raises(TransientSendError, match="cannot connect"):
        transport.send(SENDER, "zoe@acme.test", message(1))


def test_threads_share_the_one_connection_safely(
    smtp_server: SmtpTestServer, transport: SmtpTransport
) -> None:
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for n in range(offset, offset + 10):
                transport.send(SENDER, "zoe@acme.test", message(n))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i * 100,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(smtp_server.wait_for(40)) == 40
    assert smtp_server.connections == 1


def test_close_says_quit_and_the_next_send_reconnects(
    smtp_server: SmtpTestServer, transport: SmtpTransport
) -> None:
    transport.send(SENDER, "zoe@acme.test", message(1))
    transport.close()
    transport.close()  # idempotent

    transport.send(SENDER, "zoe@acme.test", message(2))

    assert len(smtp_server.wait_for(2)) == 2
    assert smtp_server.connections == 2
