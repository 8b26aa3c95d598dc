"""Schemathesis against the served OpenAPI document: no 500s, no answer the document denies.

The app is served on a loopback port (a real HTTP server, like an attacker's target) and the
``schemathesis`` CLI runs its example, coverage and fuzzing phases against
``/api/v1/openapi.json``: valid and invalid inputs derived from the document, NUL bytes and
odd characters in every string, header and query parameter, boundary numbers. Every answer
must be a documented status with a body that matches its schema, never a server error, and
every input the document calls invalid must be refused.

Deterministic (``--generation-deterministic``: the same cases every run) and bounded
(``MAX_EXAMPLES`` per operation plus the coverage phase's boundary cases): about a minute
in all. SQLite runs every operation; PostgreSQL, where NUL characters and 64-bit overflows
used to reach the driver, runs every operation that touches the database.

Left out: ``positive_data_acceptance`` (every input the document allows must be accepted).
Some limits cannot be written in JSON Schema, such as the text rules inside free-form
``data``, its size in bytes, a time zone that exists, a date that exists, so some inputs the
document allows are refused with a 422 naming the problem, by design.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import WSGIRequestHandler, make_server

from engine.clock import FrozenClock
from engine.services.scoring import save_scoring
from tests.support.api import API, ApiHarness, api_harness

ROOT = Path(__file__).resolve().parents[2]
MAX_EXAMPLES = {"sqlite": 120, "postgresql": 100}
DATABASE_FREE = r"^/(sequences|openapi\.json|feedback)"
CHECKS = ["--checks", "all", "--exclude-checks", "positive_data_acceptance"]


class _Quiet(WSGIRequestHandler):
    """Thousands of requests: the access log would bury a failure's report."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


@pytest.fixture
def served(database_url: str, now) -> Iterator[tuple[str, ApiHarness]]:  # type: ignore[no-untyped-def]
    """The app on a free loopback port, with a prospect and an open handoff to aim at."""
    with api_harness(database_url, FrozenClock(now)) as api:
        scoring = ROOT / "sequences" / "scoring.yaml"
        save_scoring(api.uow(), scoring.read_text(encoding="utf-8"), str(scoring), now)
        prospect = {"email": "ana@example.com", "status": "closed_lost", "owner": "rep@x.example"}
        assert api.post("/prospects", json=prospect).status_code == 201
        booked = api.post("/events", json={"type": "meeting.booked", "email": prospect["email"]})
        assert booked.get_json()["handoff_id"] is not None
        server = make_server("127.0.0.1", 0, api.app, threaded=True, request_handler=_Quiet)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_port}", api
        finally:
            server.shutdown()
            server.server_close()
            thread.join()


def test_schemathesis_finds_nothing(
    served: tuple[str, ApiHarness], database_url: str, tmp_path: Path
) -> None:
    base, api = served
    backend = "postgresql" if database_url.startswith("postgresql") else "sqlite"
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{base}{API}/openapi.json",
        "--header",
        f"Authorization: Bearer {api.token}",
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        str(MAX_EXAMPLES[backend]),
        "--generation-deterministic",
        "--workers",
        "1",
        "--no-color",
        *CHECKS,
    ]
    if backend == "postgresql":
        command += ["--exclude-path-regex", DATABASE_FREE]
    run = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=540, check=False
    )

    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-12_000:]
    tally = re.search(r"(\d+) generated, (\d+) passed", report)
    assert tally is not None, report[-4_000:]
    generated, passed = map(int, tally.groups())
    assert passed == generated >= 100 * operations(report), report[-4_000:]


def operations(report: str) -> int:
    """How many operations the run selected (so a filter that matched none fails)."""
    found = re.search(r"Operations:\s+(\d+) selected", report)
    return int(found.group(1)) if found else 0
