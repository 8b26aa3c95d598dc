"""Every shipped template, as recipients get it: composed by the real send path for prospects
with and without names, company and owner, and read back from the MIME bytes."""

from __future__ import annotations

import email
import email.policy
import itertools
import re
from email.message import EmailMessage

import pytest

from engine.mail.catalog import FileTemplateCatalog
from engine.mail.names import TEMPLATE_FIELDS, TEMPLATE_VARIABLES
from engine.mail.render import Renderer
from engine.services.compose import Sender, render_context
from engine.services.loading import prospect_facts
from engine.store import Prospect
from tests.support.shipped_mail import (
    COMPANIES,
    NAMES,
    OWNERS,
    SETTINGS,
    SHIPPED_KEYS,
    STEPS,
    TEMPLATES,
    compose_step,
    prospect,
)

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
        composed = compose_step(renderer, number, spec, step, facts, owner_name)
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


def test_the_hidden_preheader_is_hidden_without_tricks_spam_filters_score() -> None:
    # issue #7 item 13; tests/integration/test_spamassassin.py checks with the real filter.
    html = FileTemplateCatalog(TEMPLATES).compile("price/value-recap")
    [style] = re.findall(r'<div style="(display:none;[^"]*)">{{ preheader', html)

    assert "color" not in style  # HTML_FONT_LOW_CONTRAST: white on white
    assert not re.search(r"font-size:\s*0*[01](\.\d+)?px", style)  # __FONT_INVIS
    assert "opacity:0" in style
