"""The two Jinja templates of one compiled email: its HTML, and the plain text derived from it.

Built once per compiled HTML and shared: the validator renders them for sample prospects
(:mod:`engine.mail.footer`) and the renderer for every recipient, so a template version
costs one Jinja compilation of each part per process, not one per use.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from jinja2 import Template

from engine.mail.sandbox import BoundedSandbox
from engine.mail.text import html_to_text_template

HTML_ENV = BoundedSandbox()
# Text, subjects and preheaders are not HTML: escaping would put "&amp;" in them.
TEXT_ENV = BoundedSandbox(autoescape=False)


@dataclass(frozen=True)
class EmailParts:
    html_source: str  # compiled MJML, Jinja intact
    text_source: str  # derived from html_source, Jinja intact
    html: Template
    text: Template


@functools.lru_cache(maxsize=64)
def email_parts(html_source: str) -> EmailParts:
    """Both parts of ``html_source``, compiled (raises Jinja's ``TemplateSyntaxError``)."""
    text_source = html_to_text_template(html_source)
    return EmailParts(
        html_source,
        text_source,
        HTML_ENV.from_string(html_source),
        TEXT_ENV.from_string(text_source),
    )
