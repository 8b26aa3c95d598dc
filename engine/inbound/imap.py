"""Read a mailbox over IMAP (IMAPClient) and hand every message to the inbound service.

Each message is delivered, and only once the delivery returned (the service committed
the record) is it moved to the done folder: a crash in between leaves it in the mailbox,
the next pass delivers it again, and the service recognises it (its dedupe key) and acts
on it at most once. So a restart at any moment loses nothing and processes nothing twice.

IDLE is used where the server offers it (new mail is read within a second), with a
re-check every ``poll_seconds`` anyway; without IDLE the mailbox is polled that often. A
message the service refuses outright (larger than the limit) is flagged ``$NurtureRefused``
and left where it is for a person, instead of being fetched again on every pass.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from engine.exceptions import InvalidInputError

__all__ = ["ImapConfig", "ImapPoller"]

log = logging.getLogger(__name__)

REFUSED = "$NurtureRefused"
_BATCH = 25
_MAX_IDLE_SECONDS = 25 * 60  # RFC 2177: re-issue IDLE before the server's 30-minute timeout


@dataclass(frozen=True)
class ImapConfig:
    """Where the mailbox is: ``imaps://user:password@host[:port]/FOLDER`` (``imap://`` for
    plaintext, e.g. a local Dovecot)."""

    host: str
    port: int
    ssl: bool
    username: str
    password: str
    folder: str
    done_folder: str
    poll_seconds: float
    max_bytes: int

    @classmethod
    def from_url(
        cls, url: str, *, done_folder: str, poll_seconds: float, max_bytes: int
    ) -> ImapConfig:
        parts = urlsplit(url)
        if parts.scheme not in ("imap", "imaps") or not parts.hostname:
            raise ValueError(
                "NURTURE_INBOUND_IMAP_URL must look like imaps://user:password@host/INBOX "
                f"(got scheme {parts.scheme!r})"
            )
        if not parts.username or parts.password is None:
            raise ValueError("NURTURE_INBOUND_IMAP_URL needs a user and a password")
        ssl = parts.scheme == "imaps"
        return cls(
            host=parts.hostname,
            port=parts.port or (993 if ssl else 143),
            ssl=ssl,
            username=unquote(parts.username),
            password=unquote(parts.password),
            folder=unquote(parts.path.lstrip("/")) or "INBOX",
            done_folder=done_folder,
            poll_seconds=max(poll_seconds, 0.05),
            max_bytes=max_bytes,
        )


Deliver = Callable[[bytes], object]


class ImapPoller:
    """Drains ``config.folder`` into ``deliver`` until ``stop`` is set."""

    def __init__(self, config: ImapConfig, deliver: Deliver, stop: threading.Event) -> None:
        self.config = config
        self._deliver = deliver
        self._stop = stop

    def run(self) -> None:
        """Connect, drain, wait for more (IDLE or poll), again; reconnect after errors."""
        while not self._stop.is_set():
            try:
                with self.connected() as client:
                    while not self._stop.is_set():
                        self.drain(client)
                        self._wait(client)
            except Exception:
                log.exception("IMAP pass failed; reconnecting in %ss", self.config.poll_seconds)
                self._stop.wait(self.config.poll_seconds)

    @contextmanager
    def connected(self) -> Iterator[IMAPClient]:
        config = self.config
        client = IMAPClient(config.host, port=config.port, ssl=config.ssl, timeout=60)
        try:
            client.login(config.username, config.password)
            _ensure_folder(client, config.done_folder)
            client.select_folder(config.folder)
            yield client
        finally:
            try:
                client.logout()
            except Exception:  # the connection is gone already
                log.debug("IMAP logout failed", exc_info=True)

    def drain(self, client: IMAPClient) -> int:
        """Deliver and move every message in the folder; returns how many were moved."""
        moved = 0
        while not self._stop.is_set():
            uids = client.search(["NOT", "DELETED", "NOT", "KEYWORD", REFUSED])
            if not uids:
                return moved
            batch = sorted(uids)[:_BATCH]
            sizes = client.fetch(batch, ["RFC822.SIZE"])
            done = []
            for uid in batch:
                size = int(sizes.get(uid, {}).get(b"RFC822.SIZE", 0))
                if self._stop.is_set():
                    break
                if self._take(client, uid, size):
                    done.append(uid)
            self._move(client, done)  # the refused ones are flagged: the next search skips them
            moved += len(done)
        return moved

    def _take(self, client: IMAPClient, uid: int, size: int) -> bool:
        """Deliver one message; True when it may be moved, False when it was refused."""
        if size > self.config.max_bytes:
            log.warning("IMAP message %s is %s bytes, over the limit: flagged", uid, size)
            client.add_flags([uid], [REFUSED])
            return False
        fetched = client.fetch([uid], ["BODY.PEEK[]"]).get(uid, {})
        raw = fetched.get(b"BODY[]")
        if not isinstance(raw, bytes):
            return False  # expunged by someone else meanwhile
        try:
            self._deliver(raw)
        except InvalidInputError as exc:
            log.warning("IMAP message %s refused (%s): flagged", uid, exc)
            client.add_flags([uid], [REFUSED])
            return False
        return True

    def _move(self, client: IMAPClient, uids: list[int]) -> None:
        if not uids:
            return
        if client.has_capability("MOVE"):
            client.move(uids, self.config.done_folder)
            return
        client.copy(uids, self.config.done_folder)
        client.delete_messages(uids)
        if client.has_capability("UIDPLUS"):
            client.uid_expunge(uids)
        else:
            client.expunge()

    def _wait(self, client: IMAPClient) -> None:
        timeout = min(self.config.poll_seconds, _MAX_IDLE_SECONDS)
        if not client.has_capability("IDLE"):
            self._stop.wait(timeout)
            return
        client.idle()
        try:
            responses: list[Any] = client.idle_check(timeout=timeout)
        finally:
            client.idle_done()
        log.debug("IMAP IDLE woke with %d response(s)", len(responses))


def _ensure_folder(client: IMAPClient, name: str) -> None:
    """Create ``name`` unless it exists, tolerating a concurrent creator.

    Two pollers starting on one mailbox (two hosts, or a restart overlapping the old
    process) both see no folder and both create it; Dovecot also answers LIST before a
    first login's maildir is complete. The loser's ``[ALREADYEXISTS]`` is not an error:
    failing the pass would make it wait a whole re-check period before reading mail.
    """
    if client.folder_exists(name):
        return
    try:
        client.create_folder(name)
    except IMAPClientError:
        if not client.folder_exists(name):
            raise
