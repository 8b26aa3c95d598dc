"""html_to_text_template: readable text from compiled MJML, with the Jinja left intact."""

from __future__ import annotations

from pathlib import Path

import pytest
from jinja2 import Environment

from engine.mail.catalog import FileTemplateCatalog
from engine.mail.mjml import compile_mjml
from engine.mail.text import html_to_text_template, tidy_text

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def test_blocks_become_lines_and_paragraphs() -> None:
    html = "<div><p>First  para\n graph.</p><p>Second<br/>line two</p><h1>Title</h1>tail</div>"

    assert html_to_text_template(html) == "First para graph.\n\nSecond\nline two\n\nTitle\n\ntail"


def test_links_show_their_address_unless_it_is_the_label() -> None:
    html = (
        '<p><a href="https://example.com/pricing">See the plans</a>.</p>'
        '<p><a href="https://example.com/">https://example.com/</a></p>'
        '<p><a href="mailto:sales@example.com">sales@example.com</a></p>'
        '<p><a href="#top">Back to top</a></p>'
        '<p><a href="https://example.com/a?x=1&amp;y=2">Q</a></p>'
    )

    assert html_to_text_template(html) == (
        "See the plans (https://example.com/pricing).\n\n"
        "https://example.com/\n\n"
        "sales@example.com\n\n"
        "Back to top\n\n"
        "Q (https://example.com/a?x=1&y=2)"
    )


def test_images_use_their_alt_text_and_links_around_them_keep_the_address() -> None:
    html = (
        '<p><img src="logo.png" alt="Acme logo"> <img src="spacer.gif" alt=""></p>'
        '<p><a href="https://example.com/p"><img src="p.png" alt="Product"></a></p>'
    )

    assert html_to_text_template(html) == "Acme logo\n\nProduct (https://example.com/p)"


def test_head_style_hidden_preview_and_conditional_comments_are_dropped() -> None:
    html = (
        "<!doctype html><html><head><title>T</title><style>p { color: red }</style></head>"
        '<body><div style="display:none;font-size:1px">Preview text</div>'
        "<!--[if mso | IE]><table><tr><td>Outlook only</td></tr></table><![endif]-->"
        "<!--[if !mso]><!--><p>For everyone</p><!--<![endif]-->"
        "<script>alert(1)</script><p>Body</p></body></html>"
    )

    assert html_to_text_template(html) == "For everyone\n\nBody"


def test_jinja_is_kept_verbatim_in_text_and_attributes() -> None:
    html = (
        '<p>Hi {{ prospect.first_name or "there" }},</p>'
        "{% if prospect.company %}<p>For {{ prospect.company }} &amp; co</p>{% endif %}"
        '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a> '
        '<a href="{{ base_url }}">{{ base_url }}</a></p>'
        "<p>{% if a > b %}more{% endif %}{# a comment with <tags> #}</p>"
    )

    text = html_to_text_template(html)

    assert text == (
        'Hi {{ prospect.first_name or "there" }},\n\n'
        "{% if prospect.company %}\n\nFor {{ prospect.company }} & co\n\n{% endif %}\n\n"
        "Unsubscribe ({{ unsubscribe_url }}) {{ base_url }}\n\n"
        "{% if a > b %}more{% endif %}{# a comment with <tags> #}"
    )
    rendered = (
        Environment()
        .from_string(text)
        .render(
            prospect={"first_name": "Ana", "company": "Acme"},
            unsubscribe_url="https://n.test/u/1",
            base_url="https://n.test",
            a=2,
            b=1,
        )
    )
    assert tidy_text(rendered) == (
        "Hi Ana,\n\nFor Acme & co\n\nUnsubscribe (https://n.test/u/1) https://n.test\n\nmore"
    )


def test_literal_braces_from_entities_do_not_become_jinja() -> None:
    text = html_to_text_template("<p>&#123;&#123; not a variable &#125;&#125; {%</p>")

    assert Environment().from_string(text).render() == "{{ not a variable }} {%"


def test_tidy_text_strips_line_ends_and_extra_blank_lines() -> None:
    assert tidy_text("  a  \n\n\n\n b \n\n") == "a\n\nb"


@pytest.mark.parametrize("key", ["price/value-recap", "went-dark/demo-recap"])
def test_shipped_templates_give_readable_text(key: str) -> None:
    html = FileTemplateCatalog(TEMPLATES).compile(key)

    text = html_to_text_template(html)

    assert "<" not in text.replace("<tags>", "")
    assert "{{ unsubscribe_url }}" in text
    assert "{{ sender.postal_address }}" in text
    assert "(https://example.com/" in text
    assert "mso" not in text
    assert "{{ preheader" not in text  # the hidden preview text is not part of the body
    assert all(len(line) == len(line.strip()) for line in text.splitlines())


def test_adjacent_links_stay_apart() -> None:
    # issue #7 item 12: "Alpha (url)Beta (url)" glued the first URL to the next word, so
    # it was neither readable nor tracked.
    html = (
        '<div><a href="https://a.example/x">Alpha</a><a href="https://b.example/y">Beta</a>'
        '<a href="https://c.example/">https://c.example/</a><a href="https://d.example/">D</a>'
        '</div><p>See <a href="https://e.example/">this</a>, then <a href="https://f.example/">'
        "that</a>.</p>"
    )

    assert html_to_text_template(html) == (
        "Alpha (https://a.example/x) Beta (https://b.example/y) https://c.example/ "
        "D (https://d.example/)\n\n"
        "See this (https://e.example/), then that (https://f.example/)."
    )


def test_a_navbar_becomes_separate_links() -> None:
    mjml = (
        "<mjml><mj-body><mj-section><mj-column><mj-navbar>"
        '<mj-navbar-link href="https://a.example/x">Alpha</mj-navbar-link>'
        '<mj-navbar-link href="https://b.example/y">Beta</mj-navbar-link>'
        "</mj-navbar></mj-column></mj-section></mj-body></mjml>"
    )
    html = compile_mjml(mjml, include_loader=lambda path: "")

    assert "Alpha (https://a.example/x) Beta (https://b.example/y)" in html_to_text_template(html)
