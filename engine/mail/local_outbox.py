"""The local outbox: built messages written as ``.eml`` files when no SMTP server is set.

What a laptop install sends to, and what the web app's outbox page lists: every message
is written whole (a temporary file, fsync, rename, fsync of the folder), so a crash never
leaves half an email in it.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from engine.mail.send_errors import TransientSendError

__all__ = ["LocalOutboxTransport", "OutboxEntry", "list_outbox"]


_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*<([^>\r\n]*)>", re.IGNORECASE | re.MULTILINE)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class OutboxEntry:
    """One kept message, as the UI lists it."""

    path: Path
    from_addr: str
    to_addr: str
    subject: str
    date: datetime | None
    message_id: str


class LocalOutboxTransport:
    """Keeps each message as an ``.eml`` file in ``directory`` instead of sending it.

    The default when no SMTP server is configured, so a laptop run works end to end and
    the UI can show what would have gone out. Files are written atomically (temporary
    file, fsync, rename): a reader never sees half a message, a crash leaves none.
    """

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)

    def send(self, from_addr: str, to_addr: str, raw: bytes) -> None:
        """Write ``raw`` as ``<UTC timestamp>-<message id>.eml``; OSError becomes a
        :class:`TransientSendError` (a full disk is worth retrying)."""
        now = datetime.now(UTC)
        match = _MESSAGE_ID.search(raw, 0, _header_end(raw))
        ident = match.group(1).decode("ascii", "replace") if match else "no-message-id"
        name = f"{now:%Y%m%dT%H%M%S.%fZ}-{_UNSAFE.sub('_', ident)[:100]}.eml"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(prefix=".tmp-", dir=self.directory)
            try:
                with os.fdopen(handle, "wb") as file:
                    file.write(raw)
                    file.flush()
                    os.fsync(file.fileno())
                os.replace(temporary, self.directory / name)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                raise
            _fsync_directory(self.directory)
        except OSError as exc:
            raise TransientSendError(f"cannot write to the outbox {self.directory}: {exc}") from exc

    def close(self) -> None:
        """Nothing to close."""


def _header_end(raw: bytes) -> int:
    end = raw.find(b"\r\n\r\n")
    return len(raw) if end < 0 else end


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX); best effort elsewhere."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def list_outbox(directory: Path | str, limit: int = 50) -> list[OutboxEntry]:
    """The newest ``limit`` messages kept by :class:`LocalOutboxTransport`, newest first.

    Only headers are parsed, so listing a big outbox stays quick.
    """
    folder = Path(directory)
    try:
        names = sorted(
            (entry.name for entry in os.scandir(folder) if entry.name.endswith(".eml")),
            reverse=True,
        )
    except FileNotFoundError:
        return []
    parser = BytesHeaderParser(policy=default_policy)
    out: list[OutboxEntry] = []
    for name in names[: max(limit, 0)]:
        path = folder / name
        try:
            with path.open("rb") as file:
                head = file.read(65536)
        except OSError:
            continue  # removed meanwhile
        headers = parser.parsebytes(head[: _header_end(head)] + b"\r\n\r\n")
        out.append(
            OutboxEntry(
                path=path,
                from_addr=_addresses(headers, "from"),
                to_addr=_addresses(headers, "to"),
                subject=str(headers.get("subject", "")),
                date=_date(headers.get("date")),
                message_id=str(headers.get("message-id", "")),
            )
        )
    return out


def _addresses(headers: Any, name: str) -> str:
    value = headers.get(name)
    if value is None:
        return ""
    addresses = getattr(value, "addresses", ())
    return ", ".join(a.addr_spec for a in addresses) if addresses else str(value)


def _date(value: Any) -> datetime | None:
    if value is None:
        return None
    parsed = getattr(value, "datetime", None)
    if parsed is not None:
        return parsed  # type: ignore[no-any-return]
    try:
        return parsedate_to_datetime(str(value))
    except (TypeError, ValueError):
        return None
