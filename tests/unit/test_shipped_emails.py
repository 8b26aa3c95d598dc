"""Every shipped template, as recipients get it: composed by the real send path for prospects
with and without names, company and owner, and read back from the MIME bytes."""

from __future__ import annotations

import email
import email.policy
import itertools
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from engine.config import Settings
from engine.mail.catalog import FileTemplateCatalog
from engine.mail.names import TEMPLATE_FIELDS, TEMPLATE_VARIABLES
from engine.mail.render import Renderer
from engine.mail.tokens import TokenSigner
from engine.services.compose import Sender, compose, render_context
from engine.services.loading import prospect_facts
from engine.spec import EmailStep, SequenceSpec
from engine.spec.loader import load_sequence
from engine.store import Prospect

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"
SETTINGS = Settings(
    secret_key="test-secret",
    base_url="https://nurture.example.net",
    company_name="Flowline",
    company_url="https://flowline.example.com",
    postal_address="Flowline Ltd, 1 Harbour Street, Bristol BS1 4RN, UK",
    templates_dir=TEMPLATES,
)
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)

NAMES = {
    "named": {"first_name": "Zoë", "last_name": "O'Brien"},
    "unnamed": {"first_name": None, "last_name": None},
    "blank-names": {"first_name": "  ", "last_name": ""},
}
COMPANIES = {"company": {"company": "Acme & Sons"}, "no-company": {"company": None}}
OWNERS: dict[str, tuple[str | None, str | None]] = {
    "no-owner": (None, None),
    "owner-address-only": ("sam@flowline.example.com", None),
    "owner-user": ("sam@flowline.example.com", "Sam Carter"),
}
# What no recipient may ever read: Python's and Jinja's words for "nothing", raw template
# markup, and the glitches a missing value leaves around it.
OWNER_LINES = {
    "timing/ready-to-revisit": (
        "a 20-minute call with Sam Carter:",
        "a 20-minute call with our team:",
    ),
    "went-dark/next-steps": ("Sam Carter is here when", "We are here when"),
}
NEVER = ("None", "Undefined", "{{", "}}", "{%", "%}", "{#", "#}", " ,", "( )", "with :")


def _shipped_steps() -> list[tuple[SequenceSpec, EmailStep]]:
    catalog = FileTemplateCatalog(TEMPLATES)
    steps = []
    for path in sorted((ROOT / "sequences").glob("*.yaml")):
        if path.name == "scoring.yaml":
            continue
        spec = load_sequence(path, catalog)
        steps += [(spec, step) for step in spec.steps if isinstance(step, EmailStep)]
    return steps


STEPS = _shipped_steps()
SHIPPED_KEYS = sorted(
    str(p.relative_to(TEMPLATES).with_suffix(""))
    for p in TEMPLATES.rglob("*.mjml")
    if not p.relative_to(TEMPLATES).parts[0].startswith("_")
)


def prospect(names: str, company: str, owner: str) -> tuple[dict[str, Any], str | None]:
    owner_email, owner_name = OWNERS[owner]
    facts: dict[str, Any] = {
        "email": "zoe@acme.example",
        "title": None,
        "country": None,
        "timezone": None,
        "status": "closed_lost",
        "lost_reason": "price",
        "lost_at": None,
        "deal_size": None,
        "owner": owner_email,
        "source": None,
        "created_at": NOW,
        "status_changed_at": None,
        "attributes": {},
        **NAMES[names],
        **COMPANIES[company],
    }
    return facts, owner_name


def parts(raw: bytes) -> tuple[str, str, str]:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    return str(message["Subject"]), text.get_content(), html.get_content()


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(FileTemplateCatalog(TEMPLATES))


def test_every_shipped_template_is_sent_by_some_step() -> None:
    assert sorted({step.email for _, step in STEPS}) == SHIPPED_KEYS


@pytest.mark.parametrize(
    ("names", "company", "owner"),
    list(itertools.product(NAMES, COMPANIES, OWNERS)),
    ids=lambda value: value,
)
def test_no_recipient_sees_none_or_template_markup(
    names: str, company: str, owner: str, renderer: Renderer
) -> None:
    facts, owner_name = prospect(names, company, owner)
    for number, (spec, step) in enumerate(STEPS, start=1):
        composed = compose(
            message_id=number,
            template_key=step.email,
            subject_source=step.subject,
            prospect=facts,
            spec=spec,
            step_id=step.id or "",
            settings=SETTINGS,
            renderer=renderer,
            signer=TokenSigner(SETTINGS.secret_key),
            now=NOW,
            owner_name=owner_name,
        )
        subject, text, html = parts(composed.raw)
        for part, content in (("subject", subject), ("text", text), ("html", html)):
            for word in NEVER:
                assert word not in content, f"{step.email} ({part}) shows {word!r}"
        for content in (text, html):
            assert "Flowline Ltd, 1 Harbour Street" in content
            assert f"{SETTINGS.base_url}/u/" in content
        if step.email in OWNER_LINES:
            with_owner, without = OWNER_LINES[step.email]
            assert (with_owner if owner_name else without) in text
        greeting = "Hi Zoë," if names == "named" else "Hi there,"
        assert greeting in text, step.email
        assert SETTINGS.company_url in composed.links  # the header links the sender's site


def test_the_context_has_exactly_the_fields_validation_allows() -> None:
    # Validation (engine.mail.names) and the send path must agree, or a name that
    # validates would fail every send, or a field that exists would be refused.
    facts = prospect_facts(Prospect(email="zoe@acme.example", attributes={}))
    sender = Sender("Dana", "dana@flowline.example.com")
    context = render_context(facts, sender, SETTINGS, "https://x/u/1", owner_name="Sam")
    with_owner = render_context({**facts, "owner": "sam@x.example"}, sender, SETTINGS, "u")

    assert set(context) == TEMPLATE_VARIABLES - {"subject", "preheader"}
    assert set(context["prospect"]) == TEMPLATE_FIELDS["prospect"]
    assert set(context["sender"]) == TEMPLATE_FIELDS["sender"]
    assert context["owner"] is None
    assert set(with_owner["owner"]) == TEMPLATE_FIELDS["owner"]
