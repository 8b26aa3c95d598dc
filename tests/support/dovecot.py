"""A real IMAP server for tests: Debian's Dovecot as an unprivileged instance.

Its own configuration in a temporary directory, plaintext auth on 127.0.0.1 with a
passwd-file, Maildir storage there too. One server per test session; each test gets a
mailbox (a user) of its own, so tests never see each other's mail::

    box = dovecot.mailbox()
    box.append(raw)                      # as a mail server would deliver it
    ImapConfig.from_url(box.url, ...)    # what `nurture inbound imap` reads

Skipped with the reason when ``/usr/sbin/dovecot`` is missing (``.ci/run`` installs
``dovecot-imapd``), a failure under ``CI=true``.
"""

from __future__ import annotations

import grp
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from imapclient import IMAPClient

from tests.support.services import require_service

DOVECOT = Path("/usr/sbin/dovecot")
USERS = 200

_CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
instance_name = nurture-test-{port}
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {internal_user}
default_internal_group = {internal_group}
default_login_user = {login_user}
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/mail/%u
}}
mail_location = maildir:{root}/mail/%u/Maildir
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
"""


@dataclass(frozen=True)
class Mailbox:
    user: str
    password: str
    port: int

    @property
    def url(self) -> str:
        return f"imap://{self.user}:{self.password}@127.0.0.1:{self.port}/INBOX"

    @contextmanager
    def client(self) -> Iterator[IMAPClient]:
        client = IMAPClient("127.0.0.1", port=self.port, ssl=False, timeout=30)
        client.login(self.user, self.password)
        try:
            yield client
        finally:
            client.logout()

    def append(self, *messages: bytes) -> None:
        with self.client() as client:
            for raw in messages:
                client.append("INBOX", raw)

    def has(self, folder: str) -> bool:
        with self.client() as client:
            return bool(client.folder_exists(folder))

    def count(self, folder: str = "INBOX") -> int:
        with self.client() as client:
            if not client.folder_exists(folder):
                return 0
            client.select_folder(folder, readonly=True)
            return len(client.search(["NOT", "DELETED"]))


class DovecotServer:
    """``start()`` runs ``dovecot -F`` with a generated configuration; ``stop()`` ends it."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="nurture-dovecot-"))
        self.port = _free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._users = itertools.count(1)

    def start(self) -> DovecotServer:
        self.root.chmod(0o755)  # the login process runs as another user when we are root
        for name in ("run", "state", "mail"):
            (self.root / name).mkdir()
        # Every user up front: Dovecot rereads a passwd-file only when its mtime (seconds)
        # changes, so a user added in the same second as the last read would not log in.
        (self.root / "passwd").write_text(
            "".join(f"box{n}:{{PLAIN}}secret-box{n}::::::\n" for n in range(1, USERS + 1)),
            encoding="utf-8",
        )
        if os.geteuid() == 0:  # Dovecot refuses to run its logins as root
            internal, login = "dovecot", "dovenull"
            owner = pwd.getpwnam(internal)
            uid, gid = owner.pw_uid, owner.pw_gid
            os.chown(self.root / "mail", uid, gid)
            group = grp.getgrgid(gid).gr_name
        else:
            internal = login = pwd.getpwuid(os.getuid()).pw_name
            uid, gid = os.getuid(), os.getgid()
            group = grp.getgrgid(gid).gr_name
        config = self.root / "dovecot.conf"
        config.write_text(
            _CONFIG.format(
                root=self.root,
                port=self.port,
                internal_user=internal,
                internal_group=group,
                login_user=login,
                uid=uid,
                gid=gid,
            ),
            encoding="utf-8",
        )
        self._process = subprocess.Popen(
            [str(DOVECOT), "-F", "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait_until_listening()
        return self

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"dovecot exited: {self.log()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"dovecot did not listen on {self.port}: {self.log()[-2000:]}")

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def mailbox(self) -> Mailbox:
        """A new user with an empty INBOX."""
        number = next(self._users)
        if number > USERS:
            raise RuntimeError(f"more than {USERS} mailboxes in one session")
        return Mailbox(f"box{number}", f"secret-box{number}", self.port)

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        shutil.rmtree(self.root, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def dovecot() -> Iterator[DovecotServer]:
    """One Dovecot per test module (import this fixture into the module)."""
    require_service(
        "dovecot", DOVECOT.exists(), f"{DOVECOT} missing: apt-get install dovecot-imapd"
    )
    server = DovecotServer().start()
    try:
        yield server
    finally:
        server.stop()
