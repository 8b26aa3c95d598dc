"""Importable job functions for the worker tests (RQ imports jobs by dotted path).

They leave evidence in files, because a forked RQ work horse cannot hand anything back to
the test process otherwise.
"""

from __future__ import annotations

import threading
from pathlib import Path

from engine.runtime import current_runtime

GATES: dict[str, threading.Event] = {}
"""In-process tests hold a job at a gate to observe the queue while it runs."""


def record(path: str, value: str) -> str:
    """Append ``value`` as a line to ``path``."""
    with Path(path).open("a", encoding="utf-8") as out:
        out.write(value + "\n")
    return value


def record_ids(path: str, ids: list[int]) -> int:
    """Append the sum of ``ids`` (proves a list argument arrives as a list)."""
    record(path, str(sum(ids)))
    return len(ids)


def fail(message: str) -> None:
    raise RuntimeError(message)


def record_database_url(path: str) -> str:
    """Record which database ``current_runtime()`` gives a job."""
    return record(path, current_runtime().settings.database_url)


def wait_at_gate(name: str) -> None:
    """Block until the test opens gate ``name`` (at most 10 s)."""
    if not GATES[name].wait(10):
        raise TimeoutError(f"gate {name} never opened")
