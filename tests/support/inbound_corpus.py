"""The inbound mail corpus (``tests/corpus/inbound``), with its placeholders filled in."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "inbound"


@dataclass(frozen=True)
class Addressing:
    """What the corpus's placeholders become: by default, made-up values of the right
    shape; integration tests pass the real addresses of a sent outbox row."""

    our_id: str = "<n42.0123456789abcdef@example.com>"
    bounce: str = "bounces+b42-0123456789abcdef@example.com"
    reply: str = "reply+r42-0123456789abcdef@replies.example.com"
    unsubscribe: str = "bounces+u42-0123456789abcdef@example.com"
    to: str = "ana@initech.example"
    sender: str = "dana@example.com"


def names() -> list[str]:
    return sorted(path.name for path in CORPUS.glob("*.eml"))


def load(name: str, addressing: Addressing | None = None) -> bytes:
    """The file's bytes with ``@@OUR_ID@@`` & co. replaced (see the corpus README)."""
    values = addressing or Addressing()
    raw = (CORPUS / name).read_bytes()
    for placeholder, value in (
        ("@@OUR_ID@@", values.our_id),
        ("@@BOUNCE@@", values.bounce),
        ("@@REPLY@@", values.reply),
        ("@@UNSUB@@", values.unsubscribe),
        ("@@TO@@", values.to),
        ("@@FROM@@", values.sender),
    ):
        raw = raw.replace(placeholder.encode(), value.encode())
    return raw
