"""Process logging: human lines on a terminal, or one JSON object per line for a collector.

``NURTURE_LOG_FORMAT=json`` is for production, where logs go to something that parses them
(Loki, Elasticsearch, CloudWatch): every record becomes one line with ``time`` (ISO 8601,
UTC), ``level``, ``logger``, ``message``, ``process``, any ``extra={...}`` fields, and
``exc_info`` holding the traceback, so a multi-line traceback never splits into unrelated
records. Every entry point calls ``configure_logging`` once: the ``nurture`` command (and
with it ``nurture worker`` and ``nurture scheduler``, whose RQ loggers then use the same
handler), ``wsgi.py`` for gunicorn, and ``webapp.gunicorn_config`` for gunicorn's own logs.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

__all__ = ["JSON_FIELDS", "TEXT_FORMAT", "configure_logging", "formatter_config"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JSON_FIELDS = "%(levelname)s %(name)s %(message)s %(process)d"
_JSON_RENAMES = {"levelname": "level", "name": "logger"}
_HANDLER_NAME = "nurture"
CHATTY_LOGGERS = ("alembic",)
"""Libraries whose INFO is noise to a person (Alembic's "Context impl SQLiteImpl" and
plugin lines before every command's answer): shown at DEBUG (``nurture -v``) only."""


def formatter_config(log_format: str) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` formatter entry for ``log_format`` ("text"/"json"),
    so gunicorn's logging configuration and ours produce the same lines."""
    if log_format == "json":
        return {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": JSON_FIELDS,
            "rename_fields": dict(_JSON_RENAMES),
            "timestamp": "time",
        }
    return {"format": TEXT_FORMAT}


def _formatter(log_format: str) -> logging.Formatter:
    if log_format == "json":
        from pythonjsonlogger.json import JsonFormatter

        return JsonFormatter(JSON_FIELDS, rename_fields=dict(_JSON_RENAMES), timestamp="time")
    return logging.Formatter(TEXT_FORMAT)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of each record (as logging's own
    last-resort handler does), so a replaced stderr (a daemon's redirect, a test runner's
    capture) is followed instead of writing to a closed stream."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        """``StreamHandler.__init__`` assigns a stream; the property always reads stderr."""


def configure_logging(level: str | int, log_format: str = "text") -> None:
    """Send every logger's records to stderr at ``level``, as text or JSON lines.

    Calling it again replaces the handler it installed before (``logging.basicConfig``
    would silently keep the first configuration). Like ``basicConfig``, it leaves a root
    logger that someone else configured (an application embedding Nurture, a test runner's
    capture) alone.
    """
    root = logging.getLogger()
    ours = [h for h in root.handlers if h.get_name() == _HANDLER_NAME]
    if len(ours) != len(root.handlers):
        return
    handler = _StderrHandler()
    handler.setFormatter(_formatter(log_format))
    handler.set_name(_HANDLER_NAME)
    for existing in ours:
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    debug = root.getEffectiveLevel() <= logging.DEBUG
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if debug else logging.WARNING)
