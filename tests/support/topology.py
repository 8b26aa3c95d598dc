"""The production topology as separate processes on this machine, for end-to-end tests.

``Topology`` starts what the README's production section runs: gunicorn (``wsgi:app`` with
``webapp.gunicorn_config``), ``nurture worker`` processes and one ``nurture scheduler``,
against a PostgreSQL database and a Redis database the test owns, sending to the test's
SMTP server. Each process gets a working directory, ``HOME``, ``TMPDIR`` and
``XDG_RUNTIME_DIR`` of its own, and ``NURTURE_SEQUENCES_DIR``/``NURTURE_TEMPLATES_DIR``
pointing inside it, so nothing reaches a file another process wrote or the checkout's
``sequences/`` and ``templates/``: whatever a process needs must come from the database
(or be handed to it explicitly, as ``worker_files`` does).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def poll(condition: Callable[[], Any], deadline: float, what: str, interval: float = 0.2) -> Any:
    """Call ``condition`` until it returns something truthy, or fail at ``deadline``
    (a ``time.monotonic()`` value) saying ``what`` was awaited."""
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


@dataclass
class Process:
    name: str
    directory: Path
    popen: subprocess.Popen[bytes]

    @property
    def log(self) -> Path:
        return self.directory / "output.log"

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Topology:
    """Processes of one deployment; ``stop()`` ends them all (in their process groups)."""

    base: Path
    database_url: str
    redis_url: str
    smtp_url: str
    secret_key: str = "topology-secret"
    metrics_token: str = "topology-metrics"
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: list[Process] = field(default_factory=list)
    web_port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def directory(self, name: str) -> Path:
        """A fresh, empty working directory for process ``name``."""
        path = self.base / name
        path.mkdir(parents=True, exist_ok=False)
        return path

    def env(self, directory: Path) -> dict[str, str]:
        """The environment of a process living in ``directory``: the deployment's
        ``NURTURE_*`` settings, and every per-user or temporary path inside ``directory``."""
        inherited = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("NURTURE_", "PROMETHEUS_")) and k != "PYTHONPATH"
        }
        return {
            **inherited,
            "HOME": str(directory),
            "TMPDIR": str(directory),
            "XDG_RUNTIME_DIR": str(directory),
            "NURTURE_DATABASE_URL": self.database_url,
            "NURTURE_REDIS_URL": self.redis_url,
            "NURTURE_SMTP_URL": self.smtp_url,
            "NURTURE_SECRET_KEY": self.secret_key,
            "NURTURE_BASE_URL": "https://nurture.example",
            "NURTURE_METRICS_TOKEN": self.metrics_token,
            "NURTURE_SEQUENCES_DIR": str(directory / "sequences"),
            "NURTURE_TEMPLATES_DIR": str(directory / "templates"),
            "NURTURE_LOG_LEVEL": "WARNING",
            **self.extra_env,
        }

    def run(self, name: str, *args: str, files: dict[str, Path] | None = None) -> str:
        """Run ``nurture ARGS`` to completion in a directory of its own (holding copies of
        ``files``: folder name -> source folder); returns its stdout."""
        directory = self.directory(name)
        for target, source in (files or {}).items():
            shutil.copytree(source, directory / target)
        result = subprocess.run(
            [sys.executable, "-m", "webapp.cli", *args],
            cwd=directory,
            env=self.env(directory),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, f"nurture {' '.join(args)}: {result.stderr}"
        return result.stdout

    def start(self, name: str, argv: list[str], files: dict[str, Path] | None = None) -> Process:
        directory = self.directory(name)
        for target, source in (files or {}).items():
            shutil.copytree(source, directory / target)
        log = (directory / "output.log").open("wb")
        popen = subprocess.Popen(
            argv,
            cwd=directory,
            env=self.env(directory),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        process = Process(name, directory, popen)
        self.processes.append(process)
        return process

    def start_web(self, workers: int = 2) -> Process:
        self.web_port = free_port()
        argv = [sys.executable, "-m", "gunicorn", "-c", "python:webapp.gunicorn_config"]
        argv += ["-w", str(workers), "-b", f"127.0.0.1:{self.web_port}", "wsgi:app"]
        return self.start("web", argv)

    def start_worker(self, number: int, files: dict[str, Path] | None = None) -> Process:
        argv = [sys.executable, "-m", "webapp.cli", "worker"]
        return self.start(f"worker-{number}", argv, files)

    def start_scheduler(self, interval: float) -> Process:
        argv = [sys.executable, "-m", "webapp.cli", "scheduler", "--interval", str(interval)]
        return self.start("scheduler", argv)

    def check_alive(self) -> None:
        for process in self.processes:
            code = process.popen.poll()
            if code is not None:
                raise AssertionError(f"{process.name} exited with {code}:\n{process.tail()}")

    def stop(self) -> None:
        """SIGTERM every process group, then SIGKILL what is left after 20 s."""
        for process in self.processes:
            if process.popen.poll() is None:
                os.killpg(process.popen.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for process in self.processes:
            try:
                process.popen.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.popen.pid, signal.SIGKILL)
                process.popen.wait(10)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} ---\n{p.tail()}" for p in self.processes)

    # -- HTTP -----------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | None = None,
        timeout: float = 30,
    ) -> tuple[int, Any]:
        """One HTTP request to the web server: ``(status, parsed JSON or text)``."""
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base_url + path, data=data, headers=headers, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status, raw, kind = response.status, response.read(), response.headers
        except urllib.error.HTTPError as error:
            status, raw, kind = error.code, error.read(), error.headers
        text = raw.decode()
        if kind.get_content_type() == "application/json":
            return status, json.loads(text)
        return status, text

    def ready(self) -> bool:
        try:
            return self.request("GET", "/readyz", timeout=2)[0] == 200
        except OSError:
            return False
