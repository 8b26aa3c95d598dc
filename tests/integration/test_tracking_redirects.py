"""The click endpoint is not an open redirect: whatever the URL, it only ever sends people
to a link the message really contained, and everything else is the same plain 404."""

from __future__ import annotations

import random
import string
from urllib.parse import unquote

import pytest

from engine.mail.links import HONEYPOT_LINK_INDEX
from tests.support.tracking_env import LINKS, tracking_env

EVIL = ["//evil.com", "https://evil.com", "http://evil.com/", "evil.com", "/\\evil.com"]


@pytest.fixture
def env(database_url, now):  # type: ignore[no-untyped-def]
    with tracking_env(database_url, now) as environment:
        environment.advance(minutes=5)
        yield environment


def flip(token: str, position: int) -> str:
    """``token`` with one character changed to another character of the same alphabet."""
    alphabet = string.digits if token[position].isdigit() else string.ascii_letters + "-_"
    replacement = next(c for c in alphabet if c != token[position])
    return token[:position] + replacement + token[position + 1 :]


def crafted_paths(env) -> list[str]:  # type: ignore[no-untyped-def]
    """100 hostile variations on a real click URL."""
    rng = random.Random(8058)
    good = env.click_path(1).rsplit("/", 1)[1]
    signer = env.signer
    paths: list[str] = []
    # Something appended to or put in front of a valid token.
    for evil in EVIL:
        paths += [
            f"/t/c/{good}/{evil}",
            f"/t/c/{good}{evil}",
            f"/t/c/{good}?url={evil}",
            f"/t/c/{evil}/{good}",
            f"/t/c/{good}%2F{evil.replace('/', '%2F')}",
        ]
    # Path traversal and encodings.
    paths += [
        f"/t/c/../../{good}",
        f"/t/c/{good}/../../evil",
        "/t/c/..%2F..%2Fevil.com",
        "/t/c/%2e%2e/%2e%2e/evil.com",
        f"/t/c/{good}%00https://evil.com",
        f"/t/c/{good}%0d%0aLocation:%20https://evil.com",
        f"/t/c/{good}\u202e",
        "/t/c/%E2%80%AE" + good,
        f"/t/c/{good.replace('.', '%2E')}",
        f"/t/c/{good.upper()}",
        f"/t/c/{good.lower()}",
        f"/t/c/{good} ",
        f"/t/c/ {good}",
        f"/t/c/{good}.",
        f"/t/c/.{good}",
    ]
    # Unicode look-alikes: full-width and Arabic-Indic digits for the ids.
    ids, signature = good.rsplit(".", 1)
    full_width = ids.translate({ord("0") + d: 0xFF10 + d for d in range(10)})
    arabic = ids.translate({ord("0") + d: 0x0660 + d for d in range(10)})
    paths += [f"/t/c/{full_width}.{signature}", f"/t/c/{arabic}.{signature}"]
    # Index out of range, negative, huge, and the honeypot's index.
    mid = env.message_id
    for index in (len(LINKS), len(LINKS) + 1, 99, 2**31 - 1, HONEYPOT_LINK_INDEX, 2**63 - 1):
        paths.append(f"/t/c/{signer.click(mid, index)}")
    paths += [f"/t/c/{mid}.-1.{signature}", f"/t/c/{mid}.1.1.{signature}"]
    # Tokens of other kinds, and another message's.
    paths += [
        f"/t/c/{signer.open(mid)}",
        f"/t/c/{signer.unsubscribe(mid)}",
        f"/t/c/{signer.click(mid + 1000, 0)}",
    ]
    # Every single character of the token flipped, in turn.
    paths += [f"/t/c/{flip(good, i)}" for i in range(len(good)) if good[i] != "."]
    # The valid ids with another link's signature (signed per link, as tokens were before
    # they were signed per message, and still verify), and random tokens.
    paths.append(f"/t/c/{ids}.{signer._make('click', mid, 0).rsplit('.', 1)[1]}")
    while len(paths) < 97:
        size = rng.choice([0, 1, 22, 30, 64])
        alphabet = string.ascii_letters + string.digits + "-_.~%"
        paths.append("/t/c/" + "".join(rng.choice(alphabet) for _ in range(size)))
    # Very long.
    paths += [f"/t/c/{good}{'A' * 5000}", "/t/c/" + "1." * 3000 + signature, "/t/c/" + "9" * 400]
    return paths


def test_a_hundred_crafted_urls_never_redirect_outside_the_messages_links(env):
    paths = crafted_paths(env)
    assert len(paths) >= 100
    redirected = []
    for path in paths:
        response = env.get(path)
        location = response.headers.get("Location")
        if location is None:
            assert response.status_code == 404, path
            continue
        assert response.status_code == 302
        assert location in LINKS, (path, location)
        # Only a genuine token redirects (a query string appended, or dots percent-encoded,
        # which decode to the same path), and only to its own link. A real link's token is
        # signed for its message (engine/mail/tokens.py), so the good token with its index
        # digit flipped is the genuine token of the message's other link: it leads there.
        assert unquote(path.split("?", 1)[0]) == env.click_path(LINKS.index(location)), path
        redirected.append(location)
    assert redirected.count(LINKS[1]) > 1  # the good token, its variants among them


def test_the_query_string_is_ignored(env):
    response = env.get(env.click_path(1) + "?url=https://evil.com&next=//evil.com")
    assert response.status_code == 302
    assert response.headers["Location"] == LINKS[1]


def test_every_failure_is_the_same_plain_404(env):
    bodies = {
        env.get(path).data
        for path in (
            "/t/c/",
            "/t/c/junk",
            env.click_path(len(LINKS)),
            f"/t/c/{env.signer.click(env.message_id + 77, 0)}",
            env.click_path(0) + "//evil.com",
        )
    }
    assert len(bodies) == 1
    [body] = bodies
    assert b"evil" not in body and b"http" not in body.lower().replace(b"http-equiv", b"")


def test_failed_clicks_record_nothing(env):
    for path in crafted_paths(env)[:40]:
        env.get(path)
    assert all(e.data.get("url") in LINKS for e in env.events("email.clicked"))
