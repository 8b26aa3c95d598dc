"""The shipped emails as SpamAssassin (Debian's ``spamassassin``, local rules only) reads them.

issue #7 item 13: the hidden preheader scored 0.7 for HTML_FONT_LOW_CONTRAST in every
shipped email. The rules that judge hidden text are checked by name, so a rules update that
re-weighs them cannot make the test pass or fail by accident.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from engine.mail.catalog import FileTemplateCatalog
from engine.mail.render import Renderer
from tests.support.services import require_service
from tests.support.shipped_mail import STEPS, TEMPLATES, compose_step, prospect

HIDDEN_TEXT_RULES = ("HTML_FONT_LOW_CONTRAST", "FONT_INVIS", "HTML_TEXT_INVISIBLE")


def test_no_shipped_email_trips_a_hidden_text_rule(tmp_path: Path) -> None:
    binary = shutil.which("spamassassin")
    require_service("SpamAssassin", binary is not None, "apt-get install spamassassin")
    assert binary is not None
    renderer = Renderer(FileTemplateCatalog(TEMPLATES))
    facts, owner_name = prospect("named", "company", "owner-user")
    mbox = tmp_path / "shipped.mbox"
    with mbox.open("wb") as out:
        for number, (spec, step) in enumerate(STEPS, start=1):
            raw = compose_step(renderer, number, spec, step, facts, owner_name).raw
            out.write(b"From nurture@localhost Mon Mar  2 10:00:00 2026\n")
            out.write(raw.replace(b"\r\n", b"\n") + b"\n")

    result = subprocess.run(
        [binary, "--local", "--test-mode", "--mbox", "--nocreate-prefs"],
        stdin=mbox.open("rb"),
        capture_output=True,
        timeout=600,
        check=True,
    )
    report = result.stdout.decode("utf-8", "replace")

    assert report.count("Content analysis details") == len(STEPS)
    for rule in HIDDEN_TEXT_RULES:
        assert rule not in report, rule


@pytest.mark.parametrize("rule", HIDDEN_TEXT_RULES)
def test_the_rules_checked_exist(rule: str) -> None:
    # A renamed rule would make the test above pass for nothing.
    rules = Path("/usr/share/spamassassin")
    require_service("SpamAssassin rules", rules.is_dir(), "apt-get install spamassassin")
    assert any(rule in path.read_text(errors="replace") for path in rules.glob("*.cf"))
