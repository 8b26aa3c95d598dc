"""Signed tokens for tracking and unsubscribe links, and stable Message-IDs.

A token is ``<ids>.<signature>``: the outbox row id (and link index) in plain decimal, then
16 bytes of HMAC-SHA256 in URL-safe base64. Short (a click token is ~30 characters, so a
rewritten link stays readable in the text part), URL-safe, and verified in constant time.
Each kind of token (click, open, unsubscribe, Message-ID) signs with its own key derived
from the secret, so a token of one kind is never valid as another: an open pixel's token
cannot be replayed as an unsubscribe. The ids are not secret (they only name an outbox row);
what matters is that nobody can make up a token for a row or a link we did not send.

A click token's signature covers the message, not the link: every real link of one email
carries the same signature after its own index (one HMAC per email instead of one per
link, ~35 of them in a large email). That proves what the click endpoint relies on: the
token came from an email we sent, and the index only ever selects among *that* message's
stored links, all of which its reader already has. The honeypot link keeps a signature
of its own over its index, so a real link's token cannot be turned into the honeypot's
(that would flag a reader's own clicks as a scanner's). Tokens signed per link, as every
click token was before, still verify.

stdlib ``hmac`` instead of itsdangerous: the payload is two integers, and its tokens (JSON,
base64, 27-character signatures) would be twice as long for no gain.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable
from enum import StrEnum

_SIGNATURE_BYTES = 16
HONEYPOT_LINK_INDEX = 2**31 - 1
"""The click-token index of the honeypot link: past any real link, so the click endpoint
never redirects with it, and no real link's token is accepted as the honeypot's (indexes
from here up are signed per link, see the module doc)."""
_ID = re.compile(r"[0-9]{1,19}")
_MESSAGE_ID = re.compile(r"<n([0-9]{1,19})\.([0-9a-f]{16})@[^<>@\s]+>")
_DOMAIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")
# ``local+<kind><id>-<16 hex>@domain``: lowercase hex, because some relays fold the case of
# local parts; the kind letter is part of what is signed.
_ADDRESS_TAG = re.compile(r"\+([a-z])([0-9]{1,19})-([0-9a-f]{16})@", re.IGNORECASE)
_PLAIN_ADDRESS = re.compile(r"[^\s<>(),;:\"\\@]+@[A-Za-z0-9.-]+")


class AddressTag(StrEnum):
    """What a tagged address of ours is for (the letter in ``local+<letter><id>-...``)."""

    BOUNCE = "b"  # the VERP Return-Path: DSNs come back to it
    REPLY = "r"  # the Reply-To, when a reply address is configured
    UNSUBSCRIBE = "u"  # the List-Unsubscribe mailto


class BadTokenError(ValueError):
    """A token was malformed, altered, or signed with another key or for another kind."""


class _Hmac:
    """HMAC-SHA256 (RFC 2104) with the key's padded blocks hashed once, up front.

    Same result as ``hmac.digest(key, message, "sha256")``, at well under half the cost:
    each email signs several tokens (open, unsubscribe, clicks, Message-ID, addresses).
    """

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        block = key.ljust(64, b"\0")  # keys here are 32-byte digests, below the block size
        self._inner = hashlib.sha256(bytes(byte ^ 0x36 for byte in block))
        self._outer = hashlib.sha256(bytes(byte ^ 0x5C for byte in block))

    def digest(self, message: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


def _check_ids(ids: tuple[int, ...]) -> None:
    for value in ids:
        if type(value) is not int or not 0 <= value < 2**63:  # not bool, not float
            raise ValueError(f"token ids are non-negative 64-bit integers, not {value!r}")


class TokenSigner:
    """Signs and checks the tokens of tracking URLs with keys derived from ``secret_key``.

    Changing the secret invalidates every link already sent (opens and clicks stop being
    recorded, unsubscribe links fail): set ``NURTURE_SECRET_KEY`` once, in production.
    """

    def __init__(self, secret_key: str) -> None:
        if not secret_key:
            raise ValueError("TokenSigner needs a non-empty secret key (NURTURE_SECRET_KEY)")
        secret = secret_key.encode("utf-8")
        self._macs = {
            kind: _Hmac(hmac.digest(secret, f"nurture.tokens.{kind}".encode(), "sha256"))
            for kind in (
                "click",
                "clicks",  # a message's real links, all under one signature
                "open",
                "unsubscribe",
                "message-id",
                "handoff",
                "address",
            )
        }

    def _sign(self, kind: str, payload: str) -> str:
        mac = self._macs[kind].digest(payload.encode("ascii"))
        # 16 bytes are 22 base64 characters and two "=" of padding, dropped.
        return base64.urlsafe_b64encode(mac[:_SIGNATURE_BYTES])[:22].decode("ascii")

    def _make(self, kind: str, *ids: int) -> str:
        _check_ids(ids)
        payload = ".".join(map(str, ids))
        return f"{payload}.{self._sign(kind, payload)}"

    def _parse(self, kind: str, token: str, count: int) -> tuple[int, ...]:
        if not isinstance(token, str) or not token.isascii():
            raise BadTokenError("a token is an ASCII string")
        parts = token.split(".")
        if len(parts) != count + 1 or not all(_ID.fullmatch(part) for part in parts[:-1]):
            raise BadTokenError(f"malformed {kind} token")
        payload = ".".join(parts[:-1])
        if not hmac.compare_digest(parts[-1], self._sign(kind, payload)):
            raise BadTokenError(f"bad signature on {kind} token")
        return tuple(int(part) for part in parts[:-1])

    def click(self, message_id: int, link_index: int) -> str:
        """The token of link ``link_index`` (into the message's ``links``) of a message."""
        if type(link_index) is int and 0 <= link_index < HONEYPOT_LINK_INDEX:
            return self.click_signer(message_id)(link_index)
        return self._make("click", message_id, link_index)  # the honeypot's; or raises

    def click_signer(self, message_id: int) -> Callable[[int], str]:
        """``lambda index: self.click(message_id, index)`` for the many links of one
        message: the message's signature is made once, each real link's token is then only
        its index written between the message id and that signature."""
        _check_ids((message_id,))
        prefix = f"{message_id}."
        suffix = f".{self._sign('clicks', str(message_id))}"

        def click(index: int) -> str:
            if type(index) is not int or not 0 <= index < HONEYPOT_LINK_INDEX:
                return self._make("click", message_id, index)  # the honeypot's; or raises
            return f"{prefix}{index}{suffix}"

        return click

    def open(self, message_id: int) -> str:
        """The token of a message's open pixel."""
        return self._make("open", message_id)

    def unsubscribe(self, message_id: int) -> str:
        """The token of a message's unsubscribe link (and RFC 8058 one-click POST)."""
        return self._make("unsubscribe", message_id)

    def parse_click(self, token: str) -> tuple[int, int]:
        """``(message_id, link_index)`` of a click token; :class:`BadTokenError` if forged.

        A real link's token is signed for its message (see the module doc); one signed
        for its link alone (the honeypot's, and every token sent before) verifies too.
        """
        if isinstance(token, str) and token.isascii():
            parts = token.split(".")
            if (
                len(parts) == 3
                and _ID.fullmatch(parts[0])
                and _ID.fullmatch(parts[1])
                and int(parts[1]) < HONEYPOT_LINK_INDEX
                and hmac.compare_digest(parts[2], self._sign("clicks", parts[0]))
            ):
                return int(parts[0]), int(parts[1])
        message_id, index = self._parse("click", token, 2)
        return message_id, index

    def parse_open(self, token: str) -> int:
        """The message id of an open token; a trailing ``.gif`` (the pixel's file name) is
        accepted, so the route can pass the last path segment as it is."""
        if isinstance(token, str) and token.endswith(".gif"):
            token = token[: -len(".gif")]
        return self._parse("open", token, 1)[0]

    def parse_unsubscribe(self, token: str) -> int:
        """The message id of an unsubscribe token; :class:`BadTokenError` if forged."""
        return self._parse("unsubscribe", token, 1)[0]

    def handoff(self, handoff_id: int) -> str:
        """The token of a handoff's decision page, linked from the owner's alert email."""
        return self._make("handoff", handoff_id)

    def parse_handoff(self, token: str) -> int:
        """The handoff id of a decision-page token; :class:`BadTokenError` if forged."""
        return self._parse("handoff", token, 1)[0]

    def address_tag(self, kind: AddressTag, message_id: int) -> str:
        """``<kind><id>-<16 hex>``, the tag put after the ``+`` of one of our addresses.

        Lowercase hex rather than base64: mail systems may fold an address's case, and a
        tag must survive that. 64 bits of signature: enough that nobody can make up a tag
        for a message that would bounce, reply or unsubscribe on another prospect's behalf.
        """
        _check_ids((message_id,))
        payload = f"{kind.value}{message_id}"
        mac = self._macs["address"].digest(payload.encode("ascii")).hex()[:16]
        return f"{payload}-{mac}"

    def parse_address(self, address: str) -> tuple[AddressTag, int] | None:
        """The kind and outbox row id of a tagged address of ours (any case), or None when
        ``address`` carries no tag, an unknown kind, or a signature that does not match."""
        match = _ADDRESS_TAG.search(address or "")
        if match is None:
            return None
        letter, digits, mac = match.group(1).lower(), match.group(2), match.group(3).lower()
        try:
            kind = AddressTag(letter)
        except ValueError:
            return None
        expected = self.address_tag(kind, int(digits)) if int(digits) < 2**63 else ""
        if not hmac.compare_digest(f"{letter}{digits}-{mac}", expected):
            return None
        return kind, int(digits)

    def message_id_hash(self, message_id: int) -> str:
        """16 hex digits of keyed hash for the Message-ID of outbox row ``message_id``."""
        return self._macs["message-id"].digest(str(message_id).encode()).hex()[:16]


def message_id_header(message_id: int, domain: str, signer: TokenSigner) -> str:
    """The Message-ID of outbox row ``message_id``, like ``<n123.0a1b2c3d4e5f6789@example.com>``.

    Deterministic, so a re-send after an uncertain delivery carries the same Message-ID and
    receivers can drop the duplicate; keyed, so replies and bounces that quote it can be
    matched to the row (:func:`parse_message_id_header`) without anyone being able to forge
    one that points at another prospect's message.
    """
    domain = domain.strip().lower()
    if not _DOMAIN.fullmatch(domain):
        raise ValueError(f"{domain!r} is not a domain name for a Message-ID")
    if isinstance(message_id, bool) or not isinstance(message_id, int) or message_id < 0:
        raise ValueError(f"message ids are non-negative integers, not {message_id!r}")
    return f"<n{message_id}.{signer.message_id_hash(message_id)}@{domain}>"


def parse_message_id_header(value: str, signer: TokenSigner) -> int | None:
    """The outbox row id in a Message-ID we generated (e.g. from a reply's In-Reply-To),
    or None when it is not ours or was altered."""
    match = _MESSAGE_ID.search(value or "")
    if match is None:
        return None
    message_id = int(match.group(1))
    if not hmac.compare_digest(match.group(2), signer.message_id_hash(message_id)):
        return None
    return message_id


def tagged_address(base: str, tag: str) -> str:
    """``base`` with ``+tag`` added to its local part: ``bounces@example.com`` becomes
    ``bounces+b12-0a1b2c3d4e5f6789@example.com``. Plus-addressing (a "recipient delimiter")
    delivers that to the ``bounces`` mailbox on Postfix, Exim, Gmail and Microsoft 365."""
    if not _PLAIN_ADDRESS.fullmatch(base or "") or not base.isascii():
        raise ValueError(f"{base!r} is not a plain ASCII email address like bounces@example.com")
    local, _, domain = base.rpartition("@")
    return f"{local}+{tag}@{domain}"
