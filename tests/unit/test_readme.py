"""The README's promises that a test can hold us to."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_ci_runs_exactly_the_readmes_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    command = re.search(r"^TEST_COMMAND='(.+)'$", ci, re.MULTILINE)
    assert command is not None, ".ci/run must define TEST_COMMAND"
    assert f"\n{command.group(1)}\n" in (ROOT / "README.md").read_text()


def test_readme_documents_every_setting():
    from engine.config import Settings

    readme = (ROOT / "README.md").read_text()
    for name in Settings.__dataclass_fields__:
        assert f"NURTURE_{name.upper()}" in readme, f"README misses NURTURE_{name.upper()}"
