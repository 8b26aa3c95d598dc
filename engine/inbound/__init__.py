"""Inbound mail: reading and classifying what comes back (replies, auto-replies, bounces,
complaints, emailed unsubscribes), and the transports that bring it (IMAP, SMTP).

Parsing and classification do no I/O; ``engine.services.inbound`` ties a classified message
to our outbox and acts on it. See docs/inbound.md.
"""

from engine.inbound.classify import Classification, classify
from engine.inbound.parse import InboundMail, parse_mail

__all__ = ["Classification", "InboundMail", "classify", "parse_mail"]
