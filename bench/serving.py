"""What the HTTP benchmarks share: the baseline routes, and the app served by werkzeug in
this process or by gunicorn in a process of its own.

A latency or throughput figure for an endpoint means little on a shared 2-core machine
unless it sits next to the floor measured in the same run, through the same app, server
and clients: ``/bench/ok`` (an empty 200; a POST reads its body first) and ``/bench/db``
(the same plus one ``SELECT 1``). Whatever an endpoint costs above those is ours; what
the floor costs is Flask's, the server's and the clients' on this machine.
"""

from __future__ import annotations

import http.client
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flask import Flask, Response, request
from sqlalchemy import text
from werkzeug.serving import make_server

from engine.config import Settings
from webapp import access, create_app
from webapp.extensions import get_runtime

ROOT = Path(__file__).resolve().parents[1]
BASELINE_PATH = "/bench/ok"
ROUND_TRIP_PATH = "/bench/db"
_SELECT_1 = text("SELECT 1")
_NO_SESSION = access.Rule("public", csrf=False)  # like the API: no cookie, nothing to forge


def _ok() -> Response:
    """The baseline route: an empty 200, nothing else (a POST's body read first, as any
    endpoint taking a body must)."""
    request.get_data()
    return Response(b"", status=200)


def _round_trip() -> Response:
    """The floor of any endpoint that writes before it answers: the baseline plus one
    ``SELECT 1`` on the hits' own pool (what a pixel adds is one ``INSERT`` there)."""
    with get_runtime().hit_engine.connect() as conn:
        conn.execute(_SELECT_1)
    return Response(b"", status=200)


def with_baseline(app: Flask) -> Flask:
    """``app`` with the baseline routes (``bench/tracking_app.py`` serves it so too)."""
    for view in (_ok, _round_trip):
        setattr(view, access._ATTRIBUTE, _NO_SESSION)  # what access.public() marks, sans CSRF
    app.add_url_rule(BASELINE_PATH, "bench_ok", _ok, methods=["GET", "POST"])
    app.add_url_rule(ROUND_TRIP_PATH, "bench_db", _round_trip)
    return app


@contextmanager
def werkzeug_server(settings: Settings) -> Iterator[tuple[int, Flask]]:
    """werkzeug's threaded server on the app with its baseline, in this process (so the
    caller can count the app's statements); its port and the app."""
    app = with_baseline(create_app(settings))
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_port, app
    finally:
        server.shutdown()
        app.extensions["nurture"].close()


@contextmanager
def gunicorn_server(environment: dict[str, str], workers: int, threads: int) -> Iterator[int]:
    """gunicorn (``webapp.gunicorn_config``, gthread workers) on ``bench.tracking_app:app``
    with ``NURTURE_*`` settings from ``environment``; its port once it answers."""
    port = free_port()
    env = {**os.environ, **environment, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "gunicorn", "-c", "python:webapp.gunicorn_config"]
    argv += ["-k", "gthread", "-w", str(workers), "--threads", str(threads)]
    argv += ["-b", f"127.0.0.1:{port}", "--log-level", "warning", "bench.tracking_app:app"]
    process = subprocess.Popen(argv, cwd=ROOT, env=env, start_new_session=True)
    try:
        wait_until_up(port, process)
        yield port
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until_up(port: int, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Poll the baseline route until the server answers (or fail when it died / timed out)."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited with {process.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", BASELINE_PATH)
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit("gunicorn did not answer within a minute")
        time.sleep(0.2)


def drop(pg_name: str | None) -> None:
    """Drop the benchmark's PostgreSQL database (nothing for SQLite)."""
    if pg_name:
        import psycopg

        with psycopg.connect("postgresql://postgres@127.0.0.1/postgres", autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())
