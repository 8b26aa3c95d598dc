"""gunicorn settings for Nurture's web processes:

    gunicorn -c python:webapp.gunicorn_config -w 4 -b 0.0.0.0:8000 wsgi:app

It does two things gunicorn cannot know about:

* **Metrics across worker processes.** Each gunicorn worker is its own process, and a
  scrape of ``/metrics`` reaches just one of them. prometheus-client's multiprocess mode
  makes every worker write its request timings to files in ``PROMETHEUS_MULTIPROC_DIR``,
  which any worker sums when scraped. The variable has to be set before a worker first
  imports the client, i.e. here, in the master, as this module loads (before ``--preload``
  would import the app). Without an operator's own directory a fresh temporary one is made
  and removed on exit; an operator's directory is emptied at start, as the client requires
  (files of a previous run would be added to this one's). A dead worker's files are marked
  so that its live gauges stop counting; its counters and histograms keep their totals.
* **JSON logs for gunicorn's own loggers** when ``NURTURE_LOG_FORMAT=json``, in the same
  shape as the application's (``webapp.logs``), access log lines included.

Command-line options (``-w``, ``-b``, ...) still override anything set here.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from engine.config import parse_log_format
from webapp.logs import formatter_config

# Not imported from webapp.metrics: that imports prometheus-client, which must not be
# imported in this process before the variable is set (see the module docstring).
MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"

_owned_metrics_dir: str | None = None


def _choose_metrics_dir() -> None:
    """Point ``PROMETHEUS_MULTIPROC_DIR`` at a directory of this gunicorn master's own
    (created in ``on_starting``), unless the operator chose one."""
    global _owned_metrics_dir
    if not os.environ.get(MULTIPROCESS_VARIABLE):
        _owned_metrics_dir = os.path.join(
            tempfile.gettempdir(), f"nurture-prometheus-{os.getpid()}"
        )
        os.environ[MULTIPROCESS_VARIABLE] = _owned_metrics_dir


def _logconfig(log_format: str) -> dict[str, Any]:
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "nurture",
        "stream": "ext://sys.stderr",
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"nurture": formatter_config(log_format)},
        "handlers": {"console": handler},
        "root": {"level": "INFO", "handlers": []},
        "loggers": {
            name: {"level": "INFO", "handlers": ["console"], "propagate": False, "qualname": name}
            for name in ("gunicorn.error", "gunicorn.access")
        },
    }


_choose_metrics_dir()

# Read here rather than through Settings.from_env(): that would also make a laptop's
# secret-key file in the master's working directory, which a web host must not need.
if parse_log_format(os.environ.get("NURTURE_LOG_FORMAT")) == "json":
    logconfig_dict = _logconfig("json")


def on_starting(server: Any) -> None:
    """gunicorn hook (master, before the first worker): an empty metrics directory.

    Files left by an earlier run (a crashed master, the same pid reused) would be added to
    this run's figures, so whatever is there goes.
    """
    directory = Path(os.environ[MULTIPROCESS_VARIABLE])
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()


def child_exit(server: Any, worker: Any) -> None:
    """gunicorn hook (master): a worker exited; retire its live gauges."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    """gunicorn hook (master): remove the metrics directory this module made."""
    if _owned_metrics_dir is not None:
        shutil.rmtree(_owned_metrics_dir, ignore_errors=True)
