"""Log lines: text by default, one JSON object per line with ``NURTURE_LOG_FORMAT=json``."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from engine.config import Settings
from webapp.logs import configure_logging


@contextmanager
def bare_root_logger() -> Iterator[logging.Logger]:
    """A root logger without handlers, as a fresh process has; pytest's capture handlers
    (attached for the test's call phase, so a fixture cannot do this) come back after."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    for handler in handlers:
        root.removeHandler(handler)
    try:
        yield root
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)


def test_json_lines_carry_level_logger_extras_and_the_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with bare_root_logger():
        configure_logging("INFO", "json")
        log = logging.getLogger("nurture.test")
        log.info("sent %d emails", 3, extra={"job_id": "send-1"})
        log.debug("below the level: not written")
        try:
            raise RuntimeError("SMTP said no\nsecond line")
        except RuntimeError:
            log.exception("batch failed")

    lines = capsys.readouterr().err.splitlines()

    assert len(lines) == 2, lines
    first, second = (json.loads(line) for line in lines)
    assert first["message"] == "sent 3 emails"
    assert first["level"] == "INFO"
    assert first["logger"] == "nurture.test"
    assert first["job_id"] == "send-1"
    assert first["process"] == os.getpid()
    assert first["time"].endswith("+00:00")
    assert second["level"] == "ERROR"
    assert "RuntimeError: SMTP said no\nsecond line" in second["exc_info"]


def test_configuring_again_replaces_the_handler(capsys: pytest.CaptureFixture[str]) -> None:
    with bare_root_logger():
        configure_logging("INFO", "json")
        configure_logging("WARNING", "text")
        logging.getLogger("nurture.test").warning("once")

    lines = capsys.readouterr().err.splitlines()

    assert len(lines) == 1
    assert lines[0].endswith("WARNING nurture.test: once")


def test_a_root_logger_configured_by_someone_else_is_left_alone() -> None:
    with bare_root_logger() as root:
        theirs = logging.StreamHandler(sys.stdout)
        root.addHandler(theirs)
        configure_logging("INFO", "json")

        assert root.handlers == [theirs]


def test_the_log_format_is_checked_when_settings_are_read() -> None:
    assert (
        Settings.from_env({"NURTURE_LOG_FORMAT": " JSON ", "NURTURE_SECRET_KEY": "k"}).log_format
        == "json"
    )
    assert Settings.from_env({"NURTURE_SECRET_KEY": "k"}).log_format == "text"
    with pytest.raises(
        ValueError, match=r"NURTURE_LOG_FORMAT='xml' is not a log format; set one of text, json"
    ):
        Settings.from_env({"NURTURE_LOG_FORMAT": "xml", "NURTURE_SECRET_KEY": "k"})


def test_the_command_line_logs_json_lines(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "NURTURE_DATABASE_URL": f"sqlite:///{tmp_path / 'n.sqlite3'}",
        "NURTURE_SECRET_KEY": "k",
        "NURTURE_LOG_FORMAT": "json",
    }
    result = subprocess.run(
        # -v: Alembic's INFO records are only shown when asked for
        [sys.executable, "-m", "webapp.cli", "-v", "init", "--no-sync"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )

    records = [json.loads(line) for line in result.stderr.splitlines()]
    assert any(r["logger"].startswith("alembic") and "upgrade" in r["message"] for r in records)
    assert "database ready at revision" in result.stdout
