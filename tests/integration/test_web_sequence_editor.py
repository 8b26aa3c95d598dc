"""The sequence editor through the Flask test client: live checks with the validator's own
words at their line, publishing after the impact is shown, stale edits refused, new
sequences, history, diff and revert; every write audited, every role and CSRF checked."""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import select

from engine.services.audit import list_audit
from engine.spec.loader import check_sequence
from engine.store import Sequence, SequenceVersion
from tests.support.prospect_world import ZOFIA, add, seed_world
from tests.support.sequences import PRICE
from tests.support.web import Web

EDIT = "/sequences/lost-on-price"


def text(response) -> str:  # type: ignore[no-untyped-def]
    return html.unescape(re.sub(r"\s+", " ", response.get_data(as_text=True)))


def versions(web: Web, key: str = "lost-on-price") -> list[tuple[int, str, str | None]]:
    with web.uow() as u:
        return [
            (v.version, str(v.origin), v.created_by)
            for v in u.session.scalars(
                select(SequenceVersion)
                .join(Sequence, Sequence.id == SequenceVersion.sequence_id)
                .where(Sequence.key == key)
                .order_by(SequenceVersion.version)
            )
        ]


@pytest.fixture
def world(web: Web, now):  # type: ignore[no-untyped-def]
    seed_world(web.uow, now)
    return {"zofia": add(web.uow, now, **ZOFIA)}


TYPO = PRICE.replace("wait: 4d", "wait: 4 dayz")
TWO_EMAILS = PRICE.replace('subject: "Budget check-in"', 'subject: "Is budget still the issue?"')


def test_the_editor_opens_on_the_running_text_with_its_flow(web: Web, world) -> None:  # type: ignore[no-untyped-def]
    page = text(web.client("marketer").get(f"{EDIT}/edit"))
    assert "Editing version 1" in page and 'data-editor="yaml"' in page
    assert "key: lost-on-price" in page and "✓ Valid" in page
    assert 'id="step-engaged"' in page  # the diagram, drawn from the text


def test_a_typo_is_shown_at_its_line_in_the_validators_own_words(web: Web, world) -> None:  # type: ignore[no-untyped-def]
    marketer = web.client("marketer")
    live = marketer.htmx(f"{EDIT}/check", {"source": TYPO, "base": "1"})
    assert live.status_code == 200
    [expected] = check_sequence(TYPO, "x.yaml").problems
    assert expected.line == 14  # "  - wait: 4 dayz"
    body = text(live)
    assert f"line {expected.line}</span> {expected.message}" in body
    problems = re.search(r'data-problems="([^"]*)"', live.get_data(as_text=True))
    assert problems is not None
    assert f'"line": {expected.line}' in html.unescape(problems.group(1))
    # What cannot run is not drawn: the published version is, marked as the last valid one.
    shown = re.sub(r"<[^>]+>", "", body)
    assert "Last valid version: the published version, not what you are typing now" in shown
    assert 'class="live-flow-stale"' in body and 'id="step-engaged"' in body
    assert 'name="last_valid" value=""' in body  # an invalid draft is never the last valid one
    fixed = marketer.htmx(f"{EDIT}/check", {"source": TWO_EMAILS, "base": "1"})
    assert "✓ Valid" in text(fixed) and "Is budget still the issue?" in text(fixed)
    assert "Last valid version" not in text(fixed)
    kept = re.search(
        r'<input type="hidden" name="last_valid" value="([^"]*)"'
        r' form="publish-form"',
        fixed.get_data(as_text=True),
    )
    assert kept is not None and html.unescape(kept.group(1)) == TWO_EMAILS  # a field of the form
    typo_again = TWO_EMAILS.replace("wait: 4d", "wait: 4 dayz")
    again = text(
        marketer.htmx(
            f"{EDIT}/check", {"source": typo_again, "base": "1", "last_valid": TWO_EMAILS}
        )
    )
    assert "Last valid version: this draft as it was before the problems" in re.sub(
        r"<[^>]+>", "", again
    )
    assert "Is budget still the issue?" in again  # the draft's own last valid diagram
    assert versions(web) == [(1, "sync", None)]  # checking writes nothing


def test_a_new_sequence_with_problems_and_no_valid_version_draws_nothing(web: Web, world) -> None:  # type: ignore[no-untyped-def]
    live = text(web.client("marketer").htmx("/sequences/new/check", {"source": "key: [oops"}))
    assert "problem" in live and "Last valid version" not in live and "step-" not in live


def test_publishing_shows_the_impact_first_then_makes_an_immutable_version(web: Web, world) -> None:  # type: ignore[no-untyped-def]
    marketer = web.client("marketer")
    review = marketer.post(f"{EDIT}/publish", {"source": TWO_EMAILS, "base": "1"})
    assert review.status_code == 200
    page = text(review)
    assert "Publish version 2" in page and "They stay on the version they started" in page
    assert '<del class="diff-del">- subject: "Budget check-in"</del>' in page
    assert re.search(r"<td>v1</td><td><code>step-2</code></td><td class=\"num\">1</td>", page)
    assert "Changed steps</b> (nudge)" in page
    assert versions(web) == [(1, "sync", None)]  # nothing yet
    done = marketer.post(f"{EDIT}/publish", {"source": TWO_EMAILS, "base": "1", "confirm": "1"})
    assert done.status_code == 302 and done.headers["Location"].endswith(EDIT)
    assert versions(web) == [(1, "sync", None), (2, "editor", "marketer@example.com")]
    shown = text(marketer.get(EDIT))
    assert "Published version 2" in shown and "version 2, published" in shown
    [entry] = list_audit(web.uow(), subject="sequence:lost-on-price")
    assert (entry.action, entry.actor) == ("sequence.published", "marketer@example.com")


def test_a_stale_editor_is_told_and_never_overwrites(web: Web, world) -> None:  # type: ignore[no-untyped-def]
    ana, ben = web.client("marketer"), web.client("admin")
    ben.post(f"{EDIT}/publish", {"source": TWO_EMAILS, "base": "1", "confirm": "1"})
    mine = PRICE.replace("wait: 4d", "wait: 5d")
    for form in ({"source": mine, "base": "1"}, {"source": mine, "base": "1", "confirm": "1"}):
        stale = ana.post(f"{EDIT}/publish", form)
        assert stale.status_code == 409
        body = text(stale)
        assert "version 2 was published by admin@example.com" in body
        assert "Nothing was overwritten" in body and "wait: 5d" in body  # the draft is kept
        assert 'subject: "Is budget still the issue?"' in body  # what they changed
    assert [v for v, *_ in versions(web)] == [1, 2]


def test_an_invalid_draft_or_a_new_key_changes_nothing(web: Web, world) -> None:  # type: ignore[no-untyped-def]
    marketer = web.client("marketer")
    bad = marketer.post(f"{EDIT}/publish", {"source": TYPO, "base": "1", "confirm": "1"})
    assert bad.status_code == 422 and "fix the problems marked" in text(bad)
    renamed = PRICE.replace("key: lost-on-price", "key: another-key")
    moved = marketer.post(f"{EDIT}/publish", {"source": renamed, "base": "1"})
    assert moved.status_code == 422
    assert "the key is 'another-key', but this is the sequence 'lost-on-price'" in text(moved)
    huge = marketer.post(f"{EDIT}/check", {"source": "#" * 300_000})
    assert huge.status_code == 413
    assert versions(web) == [(1, "sync", None)]
    assert list_audit(web.uow(), subject="sequence:lost-on-price") == []


def test_line_breaks_from_the_browser_are_stored_as_in_the_files(web: Web, world) -> None:  # type: ignore[no-untyped-def]
    marketer = web.client("marketer")
    crlf = TWO_EMAILS.replace("\n", "\r\n")
    marketer.post(f"{EDIT}/publish", {"source": crlf, "base": "1", "confirm": "1"})
    with web.uow() as u:
        source = u.session.scalar(
            select(SequenceVersion.source).where(SequenceVersion.version == 2)
        )
    assert source == TWO_EMAILS


def test_a_new_sequence_from_the_skeleton_or_a_copy_starts_paused(web: Web, world) -> None:  # type: ignore[no-untyped-def]
    marketer = web.client("marketer")
    skeleton = marketer.get("/sequences/new")
    assert "key: my-new-sequence" in text(skeleton) and "✓ Valid" in text(skeleton)
    copy = text(marketer.get("/sequences/new?from=lost-on-price"))
    assert "key: lost-on-price-copy" in copy and 'name: "Copy of Closed-lost: price"' in copy
    source = PRICE.replace("key: lost-on-price", "key: lost-on-price-copy")
    review = text(marketer.post("/sequences/new", {"source": source}))
    assert "Create it (paused)" in review
    duplicate = marketer.post("/sequences/new", {"source": PRICE, "confirm": "1"})
    assert duplicate.status_code == 422
    assert "a sequence with the key 'lost-on-price' exists already" in text(duplicate)
    made = marketer.post("/sequences/new", {"source": source, "confirm": "1"})
    assert made.headers["Location"].endswith("/sequences/lost-on-price-copy")
    page = text(marketer.get("/sequences/lost-on-price-copy"))
    assert "It starts paused" in page and "Paused: nobody enters" in page
    [entry] = list_audit(web.uow(), subject="sequence:lost-on-price-copy")
    assert entry.action == "sequence.created"


def test_history_view_diff_and_revert(web: Web, world) -> None:  # type: ignore[no-untyped-def]
    marketer = web.client("marketer")
    marketer.post(f"{EDIT}/publish", {"source": TWO_EMAILS, "base": "1", "confirm": "1"})
    listing = text(marketer.get(f"{EDIT}/versions"))
    assert 'v2</a> <span class="badge badge-ok">current</span>' in listing
    assert "web editor" in listing and "files (sync)" in listing
    old = text(marketer.get(f"{EDIT}/versions/1"))
    assert 'subject: "Budget check-in"' in old and "Revert to this version" in old
    diff = marketer.get(f"{EDIT}/versions/2/diff").get_data(as_text=True)
    assert '<del class="diff-del">-    subject: &#34;Budget check-in&#34;</del>' in diff
    assert marketer.get(f"{EDIT}/versions/9").status_code == 404
    review = text(
        marketer.post(f"{EDIT}/publish", {"source": PRICE, "base": "2", "reverted_from": "1"})
    )
    assert "publishes the text of version 1 again, as version 3" in review
    marketer.post(
        f"{EDIT}/publish", {"source": PRICE, "base": "2", "reverted_from": "1", "confirm": "1"}
    )
    assert [v for v, *_ in versions(web)] == [1, 2, 3]
    actions = [e.action for e in list_audit(web.uow(), subject="sequence:lost-on-price")]
    assert actions == ["sequence.reverted", "sequence.published"]


@pytest.mark.parametrize(("role", "code"), [("admin", 200), ("sales", 403), (None, 302)])
def test_who_may_edit(web: Web, world, role, code) -> None:  # type: ignore[no-untyped-def]
    client = web.client(role)
    assert client.get(f"{EDIT}/edit").status_code == code
    assert client.get(f"{EDIT}/versions").status_code == code
    assert client.get("/sequences/new").status_code == code
    posted = client.post(f"{EDIT}/publish", {"source": TWO_EMAILS, "base": "1", "confirm": "1"})
    assert posted.status_code == (302 if code == 200 else code)


def test_every_editor_post_needs_its_token(web: Web, world) -> None:  # type: ignore[no-untyped-def]
    marketer = web.client("marketer")
    for path in (f"{EDIT}/check", f"{EDIT}/publish", f"{EDIT}/back", "/sequences/new"):
        response = marketer.post(
            path, {"source": TWO_EMAILS, "base": "1", "confirm": "1"}, csrf=False
        )
        assert response.status_code == 400, path
    assert versions(web) == [(1, "sync", None)]
