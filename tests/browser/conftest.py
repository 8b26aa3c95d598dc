"""Fixtures for the browser tests: Chromium (one per session), a page per test, and the
folder the screenshots of this run go to."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, VIEWPORT
from tests.support.services import require_service


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


_SHOTS: list[Path] = []


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("NURTURE_SCREENSHOT_DIR")
    path = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    _SHOTS.append(path)
    return path


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:  # pragma: no cover - the test extra installs it
        require_service("Playwright", False, f"{exc}: pip install -e '.[test]'")
        return
    require_service("Chromium", CHROMIUM.is_file(), f"{CHROMIUM} not found (apt install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def browser_context(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(viewport=VIEWPORT, locale="en-GB", timezone_id="UTC")
    context.set_default_timeout(15_000)
    yield context
    context.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for path in _SHOTS:
        terminalreporter.write_line(f"browser screenshots: {path}")
