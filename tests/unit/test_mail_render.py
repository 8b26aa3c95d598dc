"""Renderer: MJML compiled once per content hash, two bounded Jinja renders per recipient."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from engine.mail.catalog import FileTemplateCatalog, TemplateError
from engine.mail.render import Renderer
from engine.mail.sandbox import TemplateLimitError

FOOTER = (
    "<mj-section><mj-column><mj-text>{{ sender.company }} · {{ sender.postal_address }}"
    ' <a href="{{ unsubscribe_url }}">Unsubscribe</a></mj-text></mj-column></mj-section>'
)
HEAD = "<mj-preview>{{ preheader }}</mj-preview>"


def page(body: str) -> str:
    return (
        "<mjml><mj-head><mj-title>{{ subject }}</mj-title>"
        '<mj-include path="_partials/head.mjml" /></mj-head><mj-body>'
        f"<mj-section><mj-column>{body}</mj-column></mj-section>"
        '<mj-include path="_partials/footer.mjml" /></mj-body></mjml>'
    )


CONTEXT: dict[str, Any] = {
    "prospect": {
        "first_name": "Zoë",
        "last_name": "O'Brien",
        "email": "zoe@acme.test",
        "company": "Acme & Sons <Ltd>",
        "title": None,
        "lost_reason": "price",
        "owner": None,
        "attributes": {"notes": "x"},
    },
    "sender": {
        "name": "Dana",
        "email": "dana@nurture.test",
        "company": "Nurture",
        "company_url": "https://nurture.example.com",
        "postal_address": "1 Harbour Street",
    },
    "owner": {"name": None, "email": None},
    "unsubscribe_url": "https://n.test/u/tok",
    "base_url": "https://n.test",
}


class CountingCatalog(FileTemplateCatalog):
    """The real catalog, counting MJML compilations."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.compiles = 0

    def compile_with_sources(self, key: str) -> tuple[str, dict[str, str]]:
        self.compiles += 1
        return super().compile_with_sources(key)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "_partials").mkdir()
    (tmp_path / "_partials" / "head.mjml").write_text(HEAD)
    (tmp_path / "_partials" / "footer.mjml").write_text(FOOTER)
    (tmp_path / "price").mkdir()
    (tmp_path / "price" / "hello.mjml").write_text(
        page(
            "<mj-text>Hi {{ prospect.first_name }} from {{ prospect.company }}</mj-text>"
            '<mj-button href="https://example.com/pricing?a=1&amp;b=2">Plans</mj-button>'
        )
    )
    return tmp_path


def write_atomically(path: Path, text: str) -> None:
    """As an editor must save templates: a reader never sees a half-written file."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)
    bump_mtime(path)


def bump_mtime(path: Path) -> None:
    status = path.stat()
    os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns + 1_000_000_000))


def test_render_gives_subject_html_text_and_the_version(root: Path) -> None:
    renderer = Renderer(CountingCatalog(root))

    email = renderer.render(
        "price/hello",
        "{{ prospect.company }}:\n news for {{ prospect.first_name }}",
        "Pre <{{ prospect.last_name }}>",
        CONTEXT,
    )

    # The subject is plain text on one line: no HTML entities, no newline.
    assert email.subject == "Acme & Sons <Ltd>: news for Zoë"
    # In the HTML, values are escaped exactly once (the preheader too).
    assert "Hi Zoë from Acme &amp; Sons &lt;Ltd&gt;" in email.html
    assert "Pre &lt;O&#39;Brien&gt;" in email.html
    assert "<title>Acme &amp; Sons &lt;Ltd&gt;: news for Zoë</title>" in email.html
    # In the text part, values are as they are.
    assert "Hi Zoë from Acme & Sons <Ltd>" in email.text
    assert "Plans (https://example.com/pricing?a=1&b=2)" in email.text
    assert "Unsubscribe (https://n.test/u/tok)" in email.text
    assert "Pre <O'Brien>" not in email.text  # the hidden preview is not body text
    assert email.template_checksum == renderer.compiled("price/hello").checksum


def test_the_checksum_is_the_sha256_of_the_template_and_its_partials(root: Path) -> None:
    renderer = Renderer(FileTemplateCatalog(root))
    source = (root / "price" / "hello.mjml").read_text()
    digest = hashlib.sha256(source.encode())
    for path in ("_partials/footer.mjml", "_partials/head.mjml"):
        digest.update(b"\0" + path.encode() + b"\0" + (root / path).read_bytes())

    assert renderer.compiled("price/hello").checksum == digest.hexdigest()
    assert len(digest.hexdigest()) == 64


def test_mjml_is_compiled_once_per_content_hash(root: Path) -> None:
    catalog = CountingCatalog(root)
    renderer = Renderer(catalog)

    first = renderer.compiled("price/hello")
    for _ in range(50):
        renderer.render("price/hello", "Hi", None, CONTEXT)
    assert catalog.compiles == 1

    # Touched but unchanged: re-read and re-hashed, not recompiled.
    bump_mtime(root / "_partials" / "footer.mjml")
    assert renderer.compiled("price/hello") is first
    assert catalog.compiles == 1

    # A partial changed: a new version.
    footer = root / "_partials" / "footer.mjml"
    footer.write_text(FOOTER.replace("Unsubscribe", "Opt out"))
    bump_mtime(footer)
    second = renderer.compiled("price/hello")
    assert second.checksum != first.checksum
    assert catalog.compiles == 2
    assert "Opt out" in renderer.render("price/hello", "Hi", None, CONTEXT).html

    # Changed back: the first version is still known, nothing to compile.
    footer.write_text(FOOTER)
    bump_mtime(footer)
    assert renderer.compiled("price/hello") is first
    assert catalog.compiles == 2


def test_an_edited_template_is_picked_up_without_a_restart(root: Path) -> None:
    renderer = Renderer(FileTemplateCatalog(root))
    renderer.render("price/hello", "Hi", None, CONTEXT)
    path = root / "price" / "hello.mjml"

    path.write_text(page("<mj-text>Version two for {{ prospect.first_name }}</mj-text>"))
    bump_mtime(path)

    assert "Version two for Zoë" in renderer.render("price/hello", "Hi", None, CONTEXT).text


def test_the_text_template_is_derived_once_and_kept(root: Path) -> None:
    compiled = Renderer(FileTemplateCatalog(root)).compiled("price/hello")

    assert "Hi {{ prospect.first_name }} from {{ prospect.company }}" in compiled.text_source
    assert "{{ unsubscribe_url }}" in compiled.text_source
    assert "<mj-" not in compiled.html_source


def test_rendering_is_thread_safe_while_the_template_changes(root: Path) -> None:
    catalog = CountingCatalog(root)
    renderer = Renderer(catalog)
    path = root / "price" / "hello.mjml"
    errors: list[BaseException] = []
    seen: set[str] = set()

    def work() -> None:
        try:
            for _ in range(40):
                email = renderer.render("price/hello", "Hi", None, CONTEXT)
                seen.add(email.template_checksum)
                assert ("Hi Zoë" in email.text) or ("Bye Zoë" in email.text)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for i in range(5):
        word = "Bye" if i % 2 == 0 else "Hi"
        write_atomically(path, page(f"<mj-text>{word} {{{{ prospect.first_name }}}}</mj-text>"))
    for thread in threads:
        thread.join()

    assert errors == []
    # One compiled version per distinct content (6 at most), however the threads and the
    # writes interleave; a compile that saw the file change mid-way is retried, not kept.
    assert catalog.compiles >= 1
    assert 1 <= len(renderer._versions) <= 6
    assert seen


def test_a_broken_template_raises_template_error_with_file_and_line(root: Path) -> None:
    (root / "price" / "broken.mjml").write_text(page("<mj-text>{{ prospect.first_name }</mj-text>"))

    with pytest.raises(TemplateError, match=r"broken\.mjml:1: unexpected '}'"):
        Renderer(FileTemplateCatalog(root)).render("price/broken", "Hi", None, CONTEXT)


def test_missing_and_bad_keys_raise_template_error(root: Path) -> None:
    renderer = Renderer(FileTemplateCatalog(root))

    with pytest.raises(TemplateError, match="not found"):
        renderer.compiled("price/missing")
    with pytest.raises(TemplateError, match="bad template key"):
        renderer.compiled("../etc/passwd")


def test_missing_context_is_a_clear_template_error(root: Path) -> None:
    context = {key: value for key, value in CONTEXT.items() if key != "prospect"}

    with pytest.raises(
        TemplateError, match=r"rendering the HTML failed: .*'prospect' is undefined"
    ):
        Renderer(FileTemplateCatalog(root)).render("price/hello", "Hi", None, context)


def test_unsafe_subjects_are_refused_even_if_validation_was_skipped(root: Path) -> None:
    renderer = Renderer(FileTemplateCatalog(root))

    with pytest.raises(TemplateError, match=r"subject .*the '\*\*' operator is not available"):
        renderer.render("price/hello", "{{ 10**(10**8) }}", None, CONTEXT)


def test_runtime_limits_surface_as_template_errors(root: Path) -> None:
    (root / "price" / "notes.mjml").write_text(
        page("<mj-text>{{ prospect.attributes.notes|upper }}</mj-text>")
    )
    context = {
        **CONTEXT,
        "prospect": {**CONTEXT["prospect"], "attributes": {"notes": "n" * 200_000}},
    }

    with pytest.raises(TemplateError, match="TemplateLimitError") as caught:
        Renderer(FileTemplateCatalog(root)).render("price/notes", "Hi", None, context)
    assert isinstance(caught.value.__cause__, TemplateLimitError)


def test_the_shipped_templates_render() -> None:
    renderer = Renderer(FileTemplateCatalog(Path(__file__).resolve().parents[2] / "templates"))

    email = renderer.render("price/value-recap", "Hi {{ prospect.first_name }}", "P", CONTEXT)

    assert email.subject == "Hi Zoë"
    assert "Hi Zoë," in email.text
    assert "1 Harbour Street" in email.text


def test_missing_values_print_nothing_and_let_the_fallback_apply(root: Path) -> None:
    # issue #7: "None is here when you want a second opinion", and a custom attribute a
    # prospect lacks failed the send instead of taking the template's fallback.
    (root / "price" / "gaps.mjml").write_text(
        page(
            "<mj-text>[{{ prospect.title }}] [{{ prospect.company or 'your team' }}]"
            " [{{ prospect.first_name|default('there') }}]"
            " [{{ prospect.attributes.industry or 'your industry' }}]"
            " [{{ prospect.attributes.region|default('anywhere') }}]"
            " [{{ prospect.attributes.plan.tier }}]"
            " [{% if owner %}{{ owner.name }}{% else %}no owner{% endif %}]"
            " [{{ 'none' if prospect.last_name is none else prospect.last_name }}]"
            " [{{ sender.name }}]</mj-text>"
        )
    )
    context = {
        **CONTEXT,
        "prospect": {
            **CONTEXT["prospect"],
            "title": None,
            "company": "  ",
            "first_name": "",
            "last_name": None,
            "attributes": {},
        },
        "sender": {**CONTEXT["sender"], "name": None},
        "owner": None,
    }

    email = Renderer(FileTemplateCatalog(root)).render("price/gaps", "Hi", None, context)

    assert "[] [your team] [there] [your industry] [anywhere] [] [no owner] [none] []" in email.text
    assert "None" not in email.html


def test_unknown_fields_are_refused_not_rendered_empty(root: Path) -> None:
    (root / "price" / "typo.mjml").write_text(page("<mj-text>{{ prospect.frist_name }}</mj-text>"))
    renderer = Renderer(FileTemplateCatalog(root))

    with pytest.raises(TemplateError, match=r"unknown field 'prospect\.frist_name'"):
        renderer.render("price/typo", "Hi", None, CONTEXT)
    # A subject that skipped validation fails at send time rather than going out blank.
    with pytest.raises(TemplateError, match="'prospect' has no field 'frist_name'"):
        renderer.render("price/hello", "{{ prospect.frist_name }}", None, CONTEXT)


def test_an_email_that_would_hide_the_footer_from_its_recipient_is_refused(root: Path) -> None:
    # Every sample prospect sees the footer, so the template validates; this recipient's
    # own data hides it, so their email is refused rather than sent without an opt-out.
    (root / "_partials" / "footer.mjml").write_text(
        "{% if prospect.attributes.plan != 'vip' %}" + FOOTER + "{% endif %}"
    )
    renderer = Renderer(FileTemplateCatalog(root))
    vip = {**CONTEXT, "prospect": {**CONTEXT["prospect"], "attributes": {"plan": "vip"}}}

    assert "Unsubscribe" in renderer.render("price/hello", "Hi", None, CONTEXT).text
    with pytest.raises(TemplateError, match="the unsubscribe link and the postal address would"):
        renderer.render("price/hello", "Hi", None, vip)


def test_an_unsafe_link_from_crm_data_is_never_rendered(root: Path) -> None:
    (root / "price" / "link.mjml").write_text(
        page('<mj-button href="{{ prospect.attributes.link }}">Your page</mj-button>')
    )
    renderer = Renderer(FileTemplateCatalog(root))
    hostile = {
        **CONTEXT,
        "prospect": {**CONTEXT["prospect"], "attributes": {"link": " jAvA\tscript:alert(1)"}},
    }
    fine = {
        **CONTEXT,
        "prospect": {**CONTEXT["prospect"], "attributes": {"link": "https://x.example/p"}},
    }

    assert "https://x.example/p" in renderer.render("price/link", "Hi", None, fine).html
    with pytest.raises(TemplateError, match="is a javascript: URL, not a web link"):
        renderer.render("price/link", "Hi", None, hostile)
