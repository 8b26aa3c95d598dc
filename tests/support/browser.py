"""A real browser for UI tests: Playwright for Python driving Debian's Chromium.

Never downloads a browser: it uses ``/usr/bin/chromium`` (``NURTURE_TEST_CHROMIUM`` to
point elsewhere) and skips with the reason when that or Playwright is missing, except on
CI (``CI=true``), where that is a failure. The app runs in a real HTTP server thread
(``live_server``). ``BrowserPage`` collects the console's errors (a CSP violation is one),
which tests assert are empty, and saves screenshots into one folder per run
(``NURTURE_SCREENSHOT_DIR``, else a temporary one printed at the end of the run).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.serving import make_server

CHROMIUM = Path(os.environ.get("NURTURE_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
VIEWPORT = {"width": 1366, "height": 900}


@contextmanager
def live_server(app: Flask) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 and a free port in a thread; yields the base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


class BrowserPage:
    """A Playwright page plus what the tests want from it: the base URL, console errors,
    screenshots."""

    def __init__(self, page: Any, base_url: str, shots: Path) -> None:
        self.page = page
        self.base_url = base_url
        self.shots = shots
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def unexpected_errors(self, *statuses: int) -> list[str]:
        """Console errors, less the failed loads with these HTTP statuses (a form answered
        422 on purpose is reported by the browser as a failed resource load)."""
        expected = tuple(f"status of {status} " for status in statuses)
        return [e for e in self.errors if not any(x in e for x in expected)]

    def goto(self, path: str) -> Any:
        return self.page.goto(self.base_url + path)

    def shot(self, name: str, *, full_page: bool = True) -> Path:
        """Save a screenshot as ``<name>.png`` in the run's screenshot folder."""
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path
