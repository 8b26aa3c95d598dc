"""Templates as versioned data: synced from the folder, saved by the editor, on both databases."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from engine.exceptions import InvalidInputError, NotFoundError
from engine.mail.render import content_checksum
from engine.services.template_sync import export_templates, sync_templates
from engine.services.template_versions import (
    TemplateProblem,
    TemplateValidationError,
    stored_catalog,
)
from engine.services.templates import (
    StaleTemplateError,
    get_template_version,
    list_templates,
    save_template,
)
from engine.store import EmailTemplateVersion, ImmutableRowError, UnitOfWork

ROOT = Path(__file__).resolve().parents[2]
EMAILS = sorted(
    str(p.relative_to(ROOT / "templates").as_posix())
    for p in (ROOT / "templates").rglob("*.mjml")
    if not p.relative_to(ROOT / "templates").parts[0].startswith("_")
)
PARTIALS = ["_partials/footer.mjml", "_partials/head.mjml", "_partials/header.mjml"]

Uow = Callable[[], UnitOfWork]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", root)
    return root


@pytest.fixture
def synced(uow_factory: Uow, folder: Path, now: datetime) -> Path:
    report = sync_templates(uow_factory(), folder, now)
    assert report.problems == []
    return folder


def versions(uow_factory: Uow) -> dict[str, int | None]:
    return {row.path: row.version for row in list_templates(uow_factory())}


def test_a_sync_stores_every_template_with_the_partials_it_was_compiled_with(
    uow_factory: Uow, folder: Path, now: datetime
) -> None:
    report = sync_templates(uow_factory(), folder, now)

    assert report.problems == [] and report.conflicts == []
    assert sorted(report.created) == sorted(EMAILS + PARTIALS)
    rows = {row.path: row for row in list_templates(uow_factory())}
    assert [row.path for row in rows.values() if row.partial] == PARTIALS
    recap = rows["price/value-recap.mjml"]
    assert (recap.key, recap.version, recap.versions) == ("price/value-recap", 1, 1)
    assert recap.includes == PARTIALS
    info = get_template_version(uow_factory(), "price/value-recap.mjml")
    assert info.source == (folder / "price" / "value-recap.mjml").read_text()
    assert info.includes == {p: (folder / p).read_text() for p in PARTIALS}
    sources = {"price/value-recap": info.source, **info.includes}
    assert info.render_checksum == content_checksum(sources, "price/value-recap")
    assert info.origin == "sync"

    again = sync_templates(uow_factory(), folder, now)
    assert (again.created, again.updated, again.problems) == ([], [], [])
    assert sorted(again.unchanged) == sorted(EMAILS + PARTIALS)


def test_a_changed_partial_makes_a_new_version_of_every_email_that_includes_it(
    uow_factory: Uow, synced: Path, now: datetime
) -> None:
    footer = synced / "_partials" / "footer.mjml"
    footer.write_text(footer.read_text().replace("Unsubscribe in one click", "Opt out now"))

    report = sync_templates(uow_factory(), synced, now + timedelta(hours=1))

    assert sorted(report.updated) == sorted(["_partials/footer.mjml", *EMAILS])
    recap = get_template_version(uow_factory(), "price/value-recap.mjml")
    assert recap.version == 2
    assert recap.note == "_partials/footer.mjml changed"
    assert "Opt out now" in recap.includes["_partials/footer.mjml"]
    first = get_template_version(uow_factory(), "price/value-recap.mjml", 1)
    assert "Unsubscribe in one click" in first.includes["_partials/footer.mjml"]  # kept


def test_a_broken_file_is_reported_at_its_line_and_holds_back_only_itself(
    uow_factory: Uow, synced: Path, now: datetime
) -> None:
    recap = synced / "price" / "value-recap.mjml"
    lines = recap.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if "first_name" in line)
    lines[at] = lines[at].replace("prospect.first_name", "prospect.frist_name")
    recap.write_text("\n".join(lines) + "\n")
    study = synced / "price" / "case-study.mjml"
    study.write_text(study.read_text().replace("Best,", "All the best,"))
    header = synced / "_partials" / "header.mjml"  # breaks every email that includes it
    header.write_text(header.read_text().replace("</mj-column>", "", 1))

    report = sync_templates(uow_factory(), synced, now + timedelta(hours=1))

    assert report.updated == ["price/case-study.mjml"]
    assert (
        TemplateProblem(
            "templates/price/value-recap.mjml",
            at + 1,
            "unknown field 'prospect.frist_name' (did you mean 'prospect.first_name'?); prospect "
            "has attributes, company, country, created_at, deal_size, email, first_name, "
            "last_name, lost_at, lost_reason, owner, source, status, status_changed_at, "
            "timezone, title",
        )
        in report.problems
    )
    assert any(
        p.file == "templates/_partials/header.mjml"
        and p.line is not None
        and p.message.startswith("MJML: </mj-section> closes <mj-column>")
        for p in report.problems
    )
    assert versions(uow_factory)["price/value-recap.mjml"] == 1
    assert versions(uow_factory)["_partials/header.mjml"] == 1
    case = get_template_version(uow_factory(), "price/case-study.mjml")
    assert case.version == 2 and "All the best," in case.source
    assert (
        case.includes["_partials/header.mjml"]
        == (ROOT / "templates" / "_partials" / "header.mjml").read_text()
    )


def test_a_symlink_out_of_the_folder_is_not_synced(
    uow_factory: Uow, folder: Path, tmp_path: Path, now: datetime
) -> None:
    secret = tmp_path / "secret.mjml"
    secret.write_text("<mj-text>SECRET</mj-text>")
    (folder / "_partials" / "leak.mjml").symlink_to(secret)

    report = sync_templates(uow_factory(), folder, now)

    assert (
        TemplateProblem(
            "templates/_partials/leak.mjml",
            None,
            "leads outside the templates folder (through a symbolic link): copy the file into "
            "the templates folder instead",
        )
        in report.problems
    )
    assert "_partials/leak.mjml" not in versions(uow_factory)


def test_the_editor_saves_versions_and_refuses_a_stale_edit(
    uow_factory: Uow, synced: Path, now: datetime
) -> None:
    path = "price/value-recap.mjml"
    loaded = get_template_version(uow_factory(), path)
    edited = loaded.source.replace("Best,", "Warmly,")

    saved = save_template(uow_factory(), path, edited, loaded.version, now, "ana@example.com")

    assert saved.created and saved.republished == []
    assert (saved.version.version, saved.version.origin) == (2, "editor")
    assert saved.version.created_by == "ana@example.com"
    # Saving the same text again changes nothing.
    same = save_template(uow_factory(), path, edited, 2, now, "ana@example.com")
    assert not same.created and same.version.version == 2
    # Someone who loaded version 1 meanwhile is told, and nothing is saved.
    with pytest.raises(StaleTemplateError) as stale:
        save_template(uow_factory(), path, edited.replace("Warmly", "Cheers"), 1, now, "bo@x.io")
    assert str(stale.value).startswith(
        "price/value-recap.mjml: someone else published version 2 by ana@example.com at "
    )
    assert stale.value.current_version == 2
    assert versions(uow_factory)[path] == 2


def test_the_editor_gets_problems_at_their_line_and_nothing_is_saved(
    uow_factory: Uow, synced: Path, now: datetime
) -> None:
    path = "price/value-recap.mjml"
    source = get_template_version(uow_factory(), path).source
    broken = source.replace("<mj-button ", "<mj-buton ", 1).replace(
        "</mj-button>", "</mj-buton>", 1
    )
    line = next(i for i, text in enumerate(broken.splitlines()) if "<mj-buton" in text) + 1

    with pytest.raises(TemplateValidationError) as caught:
        save_template(uow_factory(), path, broken, 1, now)

    assert caught.value.template_problems == [
        TemplateProblem(
            f"templates/{path}",
            line,
            "MJML: <mj-buton> is not an MJML tag and would be sent as it is (did you mean "
            "<mj-button>?)",
        )
    ]
    assert versions(uow_factory)[path] == 1


def test_a_partial_saved_in_the_editor_republishes_its_emails_or_is_refused(
    uow_factory: Uow, synced: Path, now: datetime
) -> None:
    footer = get_template_version(uow_factory(), "_partials/footer.mjml")
    without_address = footer.source.replace("{{ sender.postal_address }}", "")

    with pytest.raises(TemplateValidationError) as caught:
        save_template(uow_factory(), "_partials/footer.mjml", without_address, 1, now)
    assert {p.file for p in caught.value.template_problems} == {f"templates/{e}" for e in EMAILS}
    assert all("postal address" in p.message for p in caught.value.template_problems)

    reworded = footer.source.replace("Not useful?", "Not for you?")
    saved = save_template(uow_factory(), "_partials/footer.mjml", reworded, 1, now, "ana@x.io")
    assert sorted(saved.republished) == EMAILS
    recap = get_template_version(uow_factory(), "price/value-recap.mjml")
    assert recap.version == 2 and "Not for you?" in recap.includes["_partials/footer.mjml"]


def test_a_new_template_and_a_lone_partial_are_checked_too(
    uow_factory: Uow, synced: Path, now: datetime
) -> None:
    recap = get_template_version(uow_factory(), "price/value-recap.mjml").source
    created = save_template(uow_factory(), "price/new-offer.mjml", recap, None, now)
    assert created.version.version == 1
    assert stored_catalog(uow_factory()).exists("price/new-offer")

    with pytest.raises(TemplateValidationError) as caught:
        save_template(
            uow_factory(), "_partials/cta.mjml", "<mj-text>{{ prospct }}</mj-text>", None, now
        )
    assert caught.value.template_problems[0].file == "templates/_partials/cta.mjml"
    assert caught.value.template_problems[0].line == 1
    with pytest.raises(NotFoundError):
        save_template(uow_factory(), "price/ghost.mjml", recap, 3, now)


@pytest.mark.parametrize(
    ("path", "source", "problem"),
    [
        ("../etc/passwd.mjml", "x", "is not a template path"),
        ("price/Value.mjml", "x", "is not a template path"),
        ("price/value-recap.html", "x", "is not a template path"),
        ("price/big.mjml", "x" * 200_001, "is more than the 200,000"),
        ("price/nul.mjml", "a\nb\x00", r"nul\.mjml:2: the control character"),
    ],
)
def test_bad_paths_and_texts_are_refused(
    uow_factory: Uow, synced: Path, now: datetime, path: str, source: str, problem: str
) -> None:
    with pytest.raises(InvalidInputError, match=problem):
        save_template(uow_factory(), path, source, None, now)


def test_a_sync_does_not_replace_what_the_editor_published(
    uow_factory: Uow, synced: Path, now: datetime
) -> None:
    path = "price/value-recap.mjml"
    source = get_template_version(uow_factory(), path).source
    save_template(uow_factory(), path, source.replace("Best,", "Warmly,"), 1, now, "ana@x.io")
    file = synced / path
    file.write_text(file.read_text().replace("Best,", "Regards,"))

    report = sync_templates(uow_factory(), synced, now)
    assert report.conflicts == [path]
    assert "published in the editor by ana@x.io" in report.problems[0].message
    assert "Warmly," in get_template_version(uow_factory(), path).source

    forced = sync_templates(uow_factory(), synced, now, force=True)
    assert forced.updated == [path]
    assert "Regards," in get_template_version(uow_factory(), path).source


def test_versions_are_immutable_and_unknown_ones_not_found(uow_factory: Uow, synced: Path) -> None:
    with pytest.raises(NotFoundError):
        get_template_version(uow_factory(), "price/nope.mjml")
    with pytest.raises(NotFoundError):
        get_template_version(uow_factory(), "price/value-recap.mjml", 7)
    with uow_factory() as uow:
        row = uow.session.scalars(select(EmailTemplateVersion)).first()
        assert row is not None
        row.source = "changed"
        with pytest.raises(ImmutableRowError):
            uow.session.flush()


def test_a_stored_version_altered_in_the_database_is_not_rendered(
    uow_factory: Uow, synced: Path
) -> None:
    from engine.mail.render import Renderer
    from engine.services.template_versions import stored_template

    info = get_template_version(uow_factory(), "price/value-recap.mjml")
    with uow_factory() as uow:  # bypass the ORM's guard, as an attacker with SQL would
        uow.session.execute(
            update(EmailTemplateVersion.__table__)
            .where(EmailTemplateVersion.render_checksum == info.render_checksum)
            .values(source=info.source.replace("Best,", "<a href='https://evil.example'>x</a>"))
        )
        uow.commit()
        version_id = uow.session.scalar(
            select(EmailTemplateVersion.id).where(
                EmailTemplateVersion.render_checksum == info.render_checksum
            )
        )
    with uow_factory() as uow:
        template = stored_template(
            uow.session, version_id, info.render_checksum or "", "price/value-recap"
        )
        with pytest.raises(Exception, match="does not match its checksum"):
            Renderer().compiled(template)


def test_exported_templates_are_what_was_published_and_sync_back_unchanged(
    uow_factory: Uow, synced: Path, tmp_path: Path, now: datetime
) -> None:
    path = "price/value-recap.mjml"
    source = get_template_version(uow_factory(), path).source
    edited = source.replace("Best,", "Warmly,") + "\n\n"  # trailing newlines are kept too
    save_template(uow_factory(), path, edited, 1, now, "ana@x.io")
    out = tmp_path / "exported"

    written = export_templates(uow_factory(), out)

    assert sorted(written) == sorted(EMAILS + PARTIALS)
    assert (out / path).read_bytes() == edited.encode()
    report = sync_templates(uow_factory(), out, now, force=True)
    assert (report.created, report.updated, report.problems) == ([], [], [])
