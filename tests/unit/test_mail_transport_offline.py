"""Transport pieces that need no server: URL parsing, dot-stuffing, the local outbox."""

from __future__ import annotations

import smtplib
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.config import Settings
from engine.mail.mime import build_message
from engine.mail.smtp_transport import _dot_stuff, _path
from engine.mail.transport import (
    LocalOutboxTransport,
    SmtpConfig,
    SmtpTransport,
    TransientSendError,
    list_outbox,
    make_transport,
    parse_smtp_url,
)


def message(n: int, subject: str = "Hello") -> bytes:
    return build_message(
        from_addr="dana@nurture.test",
        from_name="Dana",
        to_addr=f"p{n}@acme.test",
        reply_to=None,
        subject=f"{subject} {n}",
        html="<p>hi</p>",
        text="hi",
        message_id=f"<n{n}.0123456789abcdef@nurture.test>",
        date=datetime(2026, 3, 2, 10, n, tzinfo=UTC),
        list_unsubscribe_url=f"https://n.test/u/{n}",
        list_unsubscribe_mailto="mailto:u@nurture.test",
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://relay.test", SmtpConfig("relay.test", 587, "starttls")),
        ("smtp://relay.test:25", SmtpConfig("relay.test", 25, "none")),
        ("smtp://relay.test:25?starttls=1", SmtpConfig("relay.test", 25, "starttls")),
        ("smtp://relay.test:587?starttls=0", SmtpConfig("relay.test", 587, "none")),
        ("smtps://relay.test", SmtpConfig("relay.test", 465, "implicit")),
        ("smtp+insecure://127.0.0.1:2525", SmtpConfig("127.0.0.1", 2525, "none")),
        (
            "smtp://us%40er:p%3Ass@relay.test:587?timeout=5&helo=me.test",
            SmtpConfig("relay.test", 587, "starttls", "us@er", "p:ss", 5.0, "me.test"),
        ),
    ],
)
def test_smtp_urls(url: str, expected: SmtpConfig) -> None:
    assert parse_smtp_url(url) == expected


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://relay.test", "use smtp://"),
        ("smtp://", "names no host"),
        ("smtp://relay.test?tls=1", "unknown option"),
        ("smtp://relay.test:abc", "SMTP URL"),
        ("smtp://relay.test?timeout=soon", "SMTP URL"),
    ],
)
def test_bad_smtp_urls_say_what_is_wrong(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_smtp_url(url)


def test_dot_stuffing_doubles_leading_dots_and_terminates() -> None:
    assert _dot_stuff(b".a\r\nb\r\n.\r\n..c\r\n") == b"..a\r\nb\r\n..\r\n...c\r\n.\r\n"
    assert _dot_stuff(b"no final newline") == b"no final newline\r\n.\r\n"


# What addresses are made of, and everything email.utils.parseaddr treats specially.
_ADDRESS_CHARS = st.sampled_from(list("ab.@+-_=!#$%&'*/?^`{|}~é\u00a0\t ()<>[],;:\\\"0\r\n\x00"))


@settings(max_examples=2000, deadline=None)
@given(st.lists(_ADDRESS_CHARS, max_size=14).map("".join))
def test_mail_and_rcpt_paths_are_what_smtplib_would_send(address: str) -> None:
    # MAIL FROM and RCPT TO skip smtplib.quoteaddr's parseaddr for plain addresses.
    assert _path(address) == smtplib.quoteaddr(address)


def test_make_transport_follows_the_settings(tmp_path: Path) -> None:
    local = make_transport(Settings(outbox_dir=tmp_path / "out"))
    smtp = make_transport(Settings(smtp_url="smtp://relay.test:2525"))

    assert isinstance(local, LocalOutboxTransport)
    assert local.directory == tmp_path / "out"
    assert isinstance(smtp, SmtpTransport)
    assert smtp.config.port == 2525


def test_the_outbox_directory_is_a_setting() -> None:
    assert Settings().outbox_dir == Path("var/outbox")
    assert Settings.from_env({"NURTURE_OUTBOX_DIR": "/tmp/mail"}).outbox_dir == Path("/tmp/mail")


def test_the_local_outbox_keeps_each_message_as_an_eml_file(tmp_path: Path) -> None:
    outbox = tmp_path / "var" / "outbox"  # created on first send
    transport = LocalOutboxTransport(outbox)
    raws = [message(n) for n in range(3)]

    for raw in raws:
        transport.send("dana@nurture.test", "x@acme.test", raw)
    transport.close()

    files = sorted(outbox.iterdir())
    assert [f.suffix for f in files] == [".eml"] * 3
    assert all(
        f.name.endswith(f"-n{i}.0123456789abcdef_nurture.test.eml") for i, f in enumerate(files)
    )
    assert [f.read_bytes() for f in files] == raws
    assert not [f for f in outbox.iterdir() if f.name.startswith(".tmp")]


def test_list_outbox_is_newest_first_with_parsed_headers(tmp_path: Path) -> None:
    transport = LocalOutboxTransport(tmp_path)
    for n in range(5):
        transport.send("dana@nurture.test", f"p{n}@acme.test", message(n, "Grüße"))

    entries = list_outbox(tmp_path, limit=3)

    assert [e.to_addr for e in entries] == ["p4@acme.test", "p3@acme.test", "p2@acme.test"]
    first = entries[0]
    assert first.from_addr == "dana@nurture.test"
    assert first.subject == "Grüße 4"
    assert first.date == datetime(2026, 3, 2, 10, 4, tzinfo=UTC)
    assert first.message_id == "<n4.0123456789abcdef@nurture.test>"
    assert first.path.parent == tmp_path
    assert list_outbox(tmp_path / "missing") == []


def test_a_message_without_message_id_is_still_kept(tmp_path: Path) -> None:
    LocalOutboxTransport(tmp_path).send("a@b.test", "c@d.test", b"Subject: x\r\n\r\nhi\r\n")

    (entry,) = list_outbox(tmp_path)
    assert entry.path.name.endswith("-no-message-id.eml")
    assert entry.subject == "x"


def test_concurrent_writers_never_collide(tmp_path: Path) -> None:
    transport = LocalOutboxTransport(tmp_path)
    threads = [
        threading.Thread(
            target=lambda i=i: [
                transport.send("a@b.test", "c@d.test", message(i * 10 + k)) for k in range(10)
            ]
        )
        for i in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(list(tmp_path.glob("*.eml"))) == 40


def test_an_outbox_that_is_a_file_is_a_transient_error(tmp_path: Path) -> None:
    blocker = tmp_path / "out"
    blocker.write_text("not a directory")

    with pytest.raises(TransientSendError, match="cannot write to the outbox"):
        LocalOutboxTransport(blocker).send("a@b.test", "c@d.test", message(1))
