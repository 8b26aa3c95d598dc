"""Inbound mail as a use case: record what came back, tie it to our email, act on it.

Transports (``nurture inbound imap``, ``nurture inbound smtp``, ``POST /api/v1/inbound``)
all call :func:`receive`; the review queue's actions are :func:`assign` and
:func:`dismiss`. See docs/inbound.md.
"""

from engine.services.inbound.receive import InboundResult, process, process_pending, receive
from engine.services.inbound.review import ASSIGNABLE, assign, dismiss

__all__ = [
    "ASSIGNABLE",
    "InboundResult",
    "assign",
    "dismiss",
    "process",
    "process_pending",
    "receive",
]
