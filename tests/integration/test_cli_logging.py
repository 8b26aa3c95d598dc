"""Every ``nurture`` command answers without Alembic's INFO chatter; ``-v`` shows it.

Run as real processes: in-process, the test runner's own log capture would take the
place of the command's logging, and the chatter would never reach stderr either way.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def nurture(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "NURTURE_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}",
        "NURTURE_REDIS_URL": "",
        "NURTURE_LOG_LEVEL": "INFO",
    }
    return subprocess.run(
        [sys.executable, "-m", "webapp.cli", *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_commands_print_their_answer_not_alembics_info(tmp_path: Path) -> None:
    init = nurture(tmp_path, "init", "--no-sync")
    listing = nurture(tmp_path, "sequences", "list")

    assert (init.returncode, listing.returncode) == (0, 0), init.stderr + listing.stderr
    assert init.stdout.startswith("database ready at revision")
    assert listing.stdout.startswith("no sequences yet")
    for result in (init, listing):
        assert "alembic" not in result.stderr, result.stderr


def test_verbose_shows_what_alembic_did(tmp_path: Path) -> None:
    verbose = nurture(tmp_path, "-v", "init", "--no-sync")

    assert verbose.returncode == 0, verbose.stderr
    assert "alembic.runtime.migration" in verbose.stderr
    assert "Running upgrade" in verbose.stderr
