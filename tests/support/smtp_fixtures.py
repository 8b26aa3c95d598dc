"""The ``smtp_server`` fixture: a real SMTP server (see tests/support/smtp_server.py) per test.

Register it with ``pytest_plugins = ("tests.support.smtp_fixtures",)`` (in the root conftest,
or in a test module that needs it).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.smtp_server import SmtpTestServer


@pytest.fixture
def smtp_server() -> Iterator[SmtpTestServer]:
    """A started :class:`SmtpTestServer` on 127.0.0.1 and a free port, stopped after the
    test; ``smtp_server.url`` is what ``SmtpTransport.from_url`` takes."""
    server = SmtpTestServer().start()
    yield server
    server.stop()
