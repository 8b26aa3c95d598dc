"""FileTemplateCatalog: the template checks validation relies on, on real files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.mail.catalog import FileTemplateCatalog, TemplateError
from tests.unit.spec_helpers import VALID, sequence_problems

HEAD = '<mj-attributes><mj-all font-family="Helvetica, Arial" /></mj-attributes>'
FOOTER = (
    "<mj-section><mj-column><mj-text>{{ sender.company }}, {{ sender.postal_address }}"
    ' <a href="{{ unsubscribe_url }}">Unsubscribe</a></mj-text></mj-column></mj-section>'
)


def page(body: str) -> str:
    return (
        "<mjml>\n"
        "  <mj-head>\n"
        '    <mj-include path="_partials/head.mjml" />\n'
        "  </mj-head>\n"
        "  <mj-body>\n"
        "    <mj-section><mj-column>\n"
        f"      {body}\n"
        "    </mj-column></mj-section>\n"
        '    <mj-include path="_partials/footer.mjml" />\n'
        "  </mj-body>\n"
        "</mjml>\n"
    )


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "_partials").mkdir()
    (tmp_path / "_partials" / "head.mjml").write_text(HEAD)
    (tmp_path / "_partials" / "footer.mjml").write_text(FOOTER)
    (tmp_path / "price").mkdir()
    return tmp_path


def write(root: Path, key: str, source: str) -> None:
    (root / f"{key}.mjml").write_text(source)


def test_a_good_template_compiles_with_its_partials_and_keeps_the_jinja(root: Path) -> None:
    write(root, "price/ok", page('<mj-text>Hi {{ prospect.first_name or "there" }}</mj-text>'))
    catalog = FileTemplateCatalog(root)

    assert catalog.exists("price/ok")
    assert not catalog.exists("price/missing")
    assert catalog.check_template("price/ok") == []
    html = catalog.compile("price/ok")
    assert '{{ prospect.first_name or "there" }}' in html
    assert "{{ unsubscribe_url }}" in html
    assert "Helvetica" in html


def test_keys_cannot_leave_the_root(root: Path) -> None:
    catalog = FileTemplateCatalog(root)

    assert not catalog.exists("../etc/passwd")
    assert not catalog.exists("/etc/passwd")


def test_bad_jinja_in_the_template_names_file_and_line(root: Path) -> None:
    write(root, "price/bad", page("<mj-text>Hi {{ prospect.first_name }</mj-text>"))

    assert FileTemplateCatalog(root).check_template("price/bad") == [
        f"{root}/price/bad.mjml:7: unexpected '}}': check that every {{{{ has its }}}} and "
        "every {% its %}"
    ]


def test_unknown_variables_are_caught_before_sending(root: Path) -> None:
    write(root, "price/var", page("<mj-text>Hi {{ first_name }}</mj-text>"))

    assert FileTemplateCatalog(root).check_template("price/var") == [
        f"{root}/price/var.mjml:7: unknown variable 'first_name' (did you mean "
        "'prospect.first_name'?); templates can use base_url, owner, preheader, prospect, "
        "sender, subject, unsubscribe_url"
    ]


def test_include_outside_the_root_is_refused(root: Path) -> None:
    write(root, "price/escape", page('<mj-include path="../secrets.mjml" />'))

    errors = FileTemplateCatalog(root).check_template("price/escape")

    assert errors == [
        f"{root}/price/escape.mjml: mj-include path '../secrets.mjml' must stay inside the "
        "templates folder (write it relative to it, like '_partials/footer.mjml', without '..')"
    ]


def test_missing_include_says_what_to_create(root: Path) -> None:
    write(root, "price/noinc", page('<mj-include path="_partials/cta.mjml" />'))

    assert FileTemplateCatalog(root).check_template("price/noinc") == [
        f"{root}/price/noinc.mjml: mj-include '_partials/cta.mjml' not found: create "
        f"{root}/_partials/cta.mjml"
    ]


def test_bad_jinja_in_a_partial_names_the_partial(root: Path) -> None:
    (root / "_partials" / "footer.mjml").write_text(FOOTER + "{% if x %}")
    write(root, "price/ok", page("<mj-text>Hi</mj-text>"))

    (error,) = FileTemplateCatalog(root).check_template("price/ok")

    assert error.startswith(f"{root}/_partials/footer.mjml:1: Unexpected end of template")


def test_broken_mjml_is_explained(root: Path) -> None:
    write(root, "price/broken", page("<mj-text>Hi"))

    assert FileTemplateCatalog(root).check_template("price/broken") == [
        f"{root}/price/broken.mjml:7: MJML: <mj-text> is never closed: add </mj-text> where "
        "its content ends"
    ]


def test_a_template_without_the_legal_footer_is_refused(root: Path) -> None:
    source = page("<mj-text>Hi</mj-text>").replace(
        '    <mj-include path="_partials/footer.mjml" />\n', ""
    )
    write(root, "price/nofooter", source)

    assert FileTemplateCatalog(root).check_template("price/nofooter") == [
        f"{root}/price/nofooter.mjml: missing an unsubscribe link ({{{{ unsubscribe_url }}}}): "
        "include _partials/footer.mjml in <mj-body>",
        f"{root}/price/nofooter.mjml: missing the sender's postal address "
        "({{ sender.postal_address }}): include _partials/footer.mjml in <mj-body>",
    ]


def test_compile_raises_with_every_error(root: Path) -> None:
    write(root, "price/two", page("<mj-text>{{ a }} {{ b }}</mj-text>"))

    with pytest.raises(TemplateError) as caught:
        FileTemplateCatalog(root).compile("price/two")

    assert len(caught.value.errors) == 2


def test_check_text_for_subject_lines(root: Path) -> None:
    catalog = FileTemplateCatalog(root)

    assert catalog.check_text("{{ prospect.first_name or 'Hi' }}, what teams saved") is None
    assert catalog.check_text("{{ prospect.first_name }, hi") == (
        "unexpected '}': check that every {{ has its }} and every {% its %}"
    )
    assert catalog.check_text("{{ x | shout }}") == "No filter named 'shout'"
    assert catalog.check_text("one\n{% if prospect.company %}") is not None


def test_sequence_validation_uses_the_real_catalog(root: Path) -> None:
    for key in ("price/value-recap", "price/case-study"):
        write(root, key, page("<mj-text>Hi</mj-text>"))
    write(root, "price/budget-check-in", page("<mj-text>{{ prospct.company }}</mj-text>"))
    text = VALID.replace(
        '    subject: "{{ prospect.first_name }}, what teams like yours saved"',
        '    subject: "{{ prospect.first_name }, what teams like yours saved"',
    )

    assert sequence_problems(text, FileTemplateCatalog(root)) == [
        "seq.yaml:13: step 'value-recap': bad Jinja in subject '{{ prospect.first_name }, what "
        "teams like yours saved': unexpected '}': check that every {{ has its }} and every "
        "{% its %}",
        f"seq.yaml:25: step 'nudge': template 'price/budget-check-in': {root}/price/"
        "budget-check-in.mjml:7: unknown variable 'prospct' (did you mean 'prospect'?); templates "
        "can use base_url, owner, preheader, prospect, sender, subject, unsubscribe_url",
    ]


def test_an_include_cannot_follow_a_symlink_out_of_the_folder(root: Path, tmp_path: Path) -> None:
    # issue #8: the outside file's text appeared in the compiled HTML.
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (outside / "secret.mjml").write_text("<mj-text>SECRET</mj-text>")
    (root / "_partials" / "leak.mjml").symlink_to(outside / "secret.mjml")
    (root / "_linked").symlink_to(outside, target_is_directory=True)
    write(root, "price/leak", page('<mj-include path="_partials/leak.mjml" />'))
    write(root, "price/dirleak", page('<mj-include path="_linked/secret.mjml" />'))
    catalog = FileTemplateCatalog(root)

    for key, include in (
        ("price/leak", "_partials/leak.mjml"),
        ("price/dirleak", "_linked/secret.mjml"),
    ):
        assert catalog.check_template(key) == [
            f"{root}/{key}.mjml: mj-include {include!r} leads outside the templates folder "
            "(through a symbolic link): copy the file into the templates folder instead"
        ]
        with pytest.raises(TemplateError):
            catalog.compile(key)


def test_a_template_file_cannot_be_a_symlink_out_of_the_folder(root: Path, tmp_path: Path) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-outside-template.mjml"
    outside.write_text(page("<mj-text>SECRET</mj-text>"))
    (root / "price" / "linked.mjml").symlink_to(outside)
    catalog = FileTemplateCatalog(root)

    assert catalog.check_template("price/linked") == [
        f"{root}/price/linked.mjml leads outside the templates folder (through a symbolic "
        "link): copy the file into the templates folder instead"
    ]


def test_a_symlink_that_stays_inside_the_folder_is_fine(root: Path) -> None:
    (root / "_partials" / "alias.mjml").symlink_to(root / "_partials" / "footer.mjml")
    write(root, "price/alias", page("<mj-text>Hi</mj-text>").replace("footer.mjml", "alias.mjml"))

    assert FileTemplateCatalog(root).check_template("price/alias") == []


def test_an_unknown_prospect_field_is_caught_with_a_did_you_mean(root: Path) -> None:
    # issue #7 item 9: this validated and then failed every send.
    write(
        root,
        "price/typo",
        page(
            "<mj-text>Hi {{ prospect.frist_name }}</mj-text>\n"
            "<mj-text>{{ prospect['compnay'] }} {{ sender.adress }} {{ owner.nmae }}</mj-text>\n"
            "<mj-text>{{ prospect.industry }}</mj-text>"
        ),
    )

    fields = (
        "attributes, company, country, created_at, deal_size, email, first_name, last_name, "
        "lost_at, lost_reason, owner, source, status, status_changed_at, timezone, title"
    )
    assert FileTemplateCatalog(root).check_template("price/typo") == [
        f"{root}/price/typo.mjml:7: unknown field 'prospect.frist_name' (did you mean "
        f"'prospect.first_name'?); prospect has {fields}",
        f"{root}/price/typo.mjml:8: unknown field 'prospect.compnay' (did you mean "
        f"'prospect.company'?); prospect has {fields}",
        f"{root}/price/typo.mjml:8: unknown field 'sender.adress' (did you mean "
        "'sender.postal_address'?); sender has company, company_url, email, name, "
        "postal_address",
        f"{root}/price/typo.mjml:8: unknown field 'owner.nmae' (did you mean 'owner.name'?); owner "
        "has email, name",
        f"{root}/price/typo.mjml:9: unknown field 'prospect.industry'; prospect has {fields}; "
        "a custom CRM field is 'prospect.attributes.industry'",
    ]


def test_custom_attributes_need_no_declaration(root: Path) -> None:
    write(
        root,
        "price/custom",
        page(
            '<mj-text>{{ prospect.attributes.industry or "your industry" }}'
            " {{ prospect.attributes['plan'].tier|default('any') }}</mj-text>"
            "{% for owner in [{'whatever': 'x'}] %}{{ owner.whatever }}{% endfor %}"
        ),
    )

    assert FileTemplateCatalog(root).check_template("price/custom") == []


def test_other_tools_merge_tags_get_a_hint(root: Path) -> None:
    write(
        root,
        "price/tags",
        page(
            "<mj-text>Hi {{FirstName}} at {{ Company }}, {{ contact.firstname }}</mj-text>\n"
            "<mj-text>*|FNAME|* {contactfield=company} %%Last_Name%% *|ZZZ|*</mj-text>"
        ),
    )
    variables = "base_url, owner, preheader, prospect, sender, subject, unsubscribe_url"

    assert FileTemplateCatalog(root).check_template("price/tags") == [
        f"{root}/price/tags.mjml:7: unknown variable 'Company' (did you mean "
        "'prospect.company'? 'Company' looks like another tool's merge tag); templates can "
        f"use {variables}",
        f"{root}/price/tags.mjml:7: unknown variable 'FirstName' (did you mean "
        "'prospect.first_name'? 'FirstName' looks like another tool's merge tag); templates "
        f"can use {variables}",
        f"{root}/price/tags.mjml:7: unknown variable 'contact' (did you mean "
        "'prospect.first_name'? 'contact' looks like another tool's merge tag); templates can "
        f"use {variables}",
        f"{root}/price/tags.mjml:8: '*|FNAME|*' is a Mailchimp merge tag; Nurture would send "
        "it as written: write {{ prospect.first_name }}",
        f"{root}/price/tags.mjml:8: '*|ZZZ|*' is a Mailchimp merge tag; Nurture would send it "
        "as written: use the variables listed in templates/README.md",
        f"{root}/price/tags.mjml:8: '{{contactfield=company}}' is a Mautic token; Nurture would "
        "send it as written: write {{ prospect.company }}",
        f"{root}/price/tags.mjml:8: '%%Last_Name%%' is a merge tag of another tool; Nurture "
        "would send it as written: write {{ prospect.last_name }}",
    ]


def test_subjects_get_the_same_name_checks(root: Path) -> None:
    catalog = FileTemplateCatalog(root)

    assert catalog.check_text("{{ prospect.frist_name }}, hi") == (
        "unknown field 'prospect.frist_name' (did you mean 'prospect.first_name'?); prospect "
        "has attributes, company, country, created_at, deal_size, email, first_name, last_name, "
        "lost_at, lost_reason, owner, source, status, status_changed_at, timezone, title"
    )
    assert catalog.check_text("*|FNAME|*, what teams saved") == (
        "'*|FNAME|*' is a Mailchimp merge tag; Nurture would send it as written: write "
        "{{ prospect.first_name }}"
    )
    assert catalog.check_text("{{ prospect.attributes.industry or 'you' }}") is None


def test_an_unknown_mjml_tag_is_refused_with_its_line(root: Path) -> None:
    # issue #7 item 9: <mj-buton> validated and went out as a raw tag.
    write(root, "price/typo", page('<mj-buton href="https://example.com">Go</mj-buton>'))
    (root / "_partials" / "cta.mjml").write_text("<mj-section>\n<mj-colum></mj-colum></mj-section>")
    write(root, "price/partial", page('<mj-include path="_partials/cta.mjml" />'))
    catalog = FileTemplateCatalog(root)

    assert catalog.check_template("price/typo") == [
        f"{root}/price/typo.mjml:7: MJML: <mj-buton> is not an MJML tag and would be sent as "
        "it is (did you mean <mj-button>?)"
    ]
    assert catalog.check_template("price/partial") == [
        f"{root}/_partials/cta.mjml:2: MJML: <mj-colum> is not an MJML tag and would be sent "
        "as it is (did you mean <mj-column>?)"
    ]


def test_an_unclosed_tag_in_a_long_file_is_found_at_its_line(root: Path) -> None:
    # issue #7 item 15: "unexpected end of stream" with no line, in a 100-line file.
    body = "\n".join(f"      <mj-text>Paragraph {i}</mj-text>" for i in range(45))
    body += "\n      <mj-text>This one is never closed\n"
    body += "\n".join(f"      <mj-text>Paragraph {i}</mj-text>" for i in range(45, 90))
    write(root, "price/long", page(body))

    assert FileTemplateCatalog(root).check_template("price/long") == [
        f"{root}/price/long.mjml:52: MJML: <mj-text> is never closed: add </mj-text> where its "
        "content ends"
    ]


def test_tags_closed_out_of_order_or_never_are_placed(root: Path) -> None:
    (root / "_partials" / "cta.mjml").write_text(
        "<mj-section>\n  <mj-column>\n    <mj-button href='https://x.example'>Go</mj-button>\n"
    )
    write(root, "price/cta", page('<mj-include path="_partials/cta.mjml" />'))
    write(root, "price/order", page("<mj-section><mj-column>\n</mj-section></mj-column>"))
    catalog = FileTemplateCatalog(root)

    assert catalog.check_template("price/cta") == [
        f"{root}/_partials/cta.mjml:2: MJML: <mj-column> is never closed: add </mj-column>"
    ]
    assert catalog.check_template("price/order") == [
        f"{root}/price/order.mjml:8: MJML: </mj-section> closes <mj-column> (line 7): close "
        "<mj-column> with </mj-column> first"
    ]


def test_a_comment_opener_in_pasted_css_is_named(root: Path) -> None:
    # issue #7 item 15: "Missing end of comment tag" did not say where or why.
    (root / "_partials" / "head.mjml").write_text(
        HEAD + "\n<mj-style>\n  a { color: red; }\n  @media screen{#outlook a{padding:0}}\n"
        "</mj-style>"
    )
    write(root, "price/css", page("<mj-text>Hi</mj-text>"))

    assert FileTemplateCatalog(root).check_template("price/css") == [
        f"{root}/_partials/head.mjml:4: '{{#' in '@media screen{{#outlook a{{padding:0}}}}' "
        "starts a Jinja comment that never ends: if it is CSS (like '{#outlook a'), put a space "
        "between '{' and '#', or wrap the CSS in {% raw %}...{% endraw %}"
    ]


HIDDEN_FOOTERS = {
    "in-a-comment": (
        "<mj-section><mj-column><mj-text>Bye<!-- {{ sender.postal_address }}"
        ' <a href="{{ unsubscribe_url }}">Unsubscribe</a> --></mj-text></mj-column></mj-section>',
        ["HTML part", "text part"],
        ["unsubscribe link", "postal address"],
        "a prospect with every field",
    ),
    "behind-a-false-if": (
        "{% if prospect.attributes.vip %}" + FOOTER + "{% endif %}",
        ["HTML part", "text part"],
        ["unsubscribe link", "postal address"],
        "a prospect with every field",
    ),
    "only-with-a-company": (
        "{% if prospect.company %}" + FOOTER + "{% endif %}",
        ["HTML part", "text part"],
        ["unsubscribe link", "postal address"],
        "a prospect without a company",
    ),
    "in-a-hidden-element": (
        FOOTER.replace("<mj-text>", '<mj-text><div style="display: none">').replace(
            "</mj-text>", "</div></mj-text>"
        ),
        ["HTML part", "text part"],
        ["unsubscribe link", "postal address"],
        "a prospect with every field",
    ),
    "white-on-white": (
        FOOTER.replace("<mj-text>", '<mj-text color="#fefefe">'),
        ["HTML part"],
        ["unsubscribe link", "postal address"],
        "a prospect with every field",
    ),
    "a-link-without-a-label": (
        FOOTER.replace(">Unsubscribe</a>", "></a>"),
        ["HTML part"],
        ["unsubscribe link"],
        "a prospect with every field",
    ),
}


@pytest.mark.parametrize(
    ("footer", "parts", "items", "who"), HIDDEN_FOOTERS.values(), ids=HIDDEN_FOOTERS.keys()
)
def test_the_footer_must_be_visible_not_just_present(
    root: Path, footer: str, parts: list[str], items: list[str], who: str
) -> None:
    # issue #7 item 10: a substring in a comment or behind a false {% if %} passed.
    (root / "_partials" / "footer.mjml").write_text(footer)
    write(root, "price/hidden", page("<mj-text>Hi</mj-text>"))

    errors = FileTemplateCatalog(root).check_template("price/hidden")

    expected = {(item, part) for item in items for part in parts}
    found = set()
    for error in errors:
        match = re.fullmatch(
            rf"{re.escape(str(root))}/price/hidden\.mjml: the (unsubscribe link|postal address) "
            r"\(\{\{ [a-z_.]+ \}\}\) is not visible in the (HTML part|text part) for (.+?): "
            r"show it as text .*",
            error,
        )
        assert match, error
        assert match[3] == who
        found.add((match[1], match[2]))
    assert found == expected


def test_a_template_that_fails_for_some_prospect_is_refused(root: Path) -> None:
    write(root, "price/deal", page("<mj-text>{{ prospect.deal_size > 1000 }}</mj-text>"))

    (error,) = FileTemplateCatalog(root).check_template("price/deal")

    assert error.startswith(
        f"{root}/price/deal.mjml: rendering the HTML part for a prospect with every field "
        "fails: UndefinedError"
    )


def test_unsafe_links_fail_validation_at_their_line(root: Path) -> None:
    # issue #7 item 11: javascript:, data: and vbscript: links, in any spelling.
    write(
        root,
        "price/unsafe",
        page(
            '<mj-button href="JavaScript:alert(1)">Go</mj-button>\n'
            '<mj-text><a href="&#106;avascript:alert(1)">x</a> <a href="https://ok.example">ok'
            '</a></mj-text>\n<mj-text><a href="vbscript:msgbox(1)">y</a></mj-text>'
        ),
    )

    assert FileTemplateCatalog(root).check_template("price/unsafe") == [
        f"{root}/price/unsafe.mjml:7: the link 'JavaScript:alert(1)' is a javascript: URL, not "
        "a web link: emails may link to http(s), mailto: and tel: addresses only",
        f"{root}/price/unsafe.mjml:8: the link '&#106;avascript:alert(1)' is a javascript: "
        "URL, not a web link: emails may link to http(s), mailto: and tel: addresses only",
        f"{root}/price/unsafe.mjml:9: the link 'vbscript:msgbox(1)' is a vbscript: URL, not a "
        "web link: emails may link to http(s), mailto: and tel: addresses only",
    ]
