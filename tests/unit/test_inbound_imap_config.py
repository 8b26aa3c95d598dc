"""The IMAP reader's mailbox URL: what it means, and a clear error when it is wrong."""

from __future__ import annotations

import pytest

from engine.inbound.imap import ImapConfig

OPTIONS = {"done_folder": "Done", "poll_seconds": 60.0, "max_bytes": 1000}


def test_imaps_url_with_an_encoded_password_and_a_folder() -> None:
    config = ImapConfig.from_url(
        "imaps://bounces%40acme.example:p%2Fss@imap.acme.example/Bounces", **OPTIONS
    )

    assert (config.host, config.port, config.ssl) == ("imap.acme.example", 993, True)
    assert (config.username, config.password, config.folder) == (
        "bounces@acme.example",
        "p/ss",
        "Bounces",
    )


def test_plain_imap_defaults_to_port_143_and_the_inbox() -> None:
    config = ImapConfig.from_url("imap://u:p@127.0.0.1", **OPTIONS)

    assert (config.port, config.ssl, config.folder) == (143, False, "INBOX")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://u:p@host/INBOX", "must look like imaps://"),
        ("imaps:///INBOX", "must look like imaps://"),
        ("imaps://host/INBOX", "needs a user and a password"),
    ],
)
def test_a_wrong_url_says_what_to_write(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ImapConfig.from_url(url, **OPTIONS)
