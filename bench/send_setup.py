"""bench/send.py's surroundings: smtp-sink and a throw-away database started for the run,
the due messages seeded in bulk, and the machine line printed with the figures.

Split from ``bench/send.py`` (the entry point: the rounds and the report) so that the
script reads as what it measures; nothing here is timed.
"""

from __future__ import annotations

import contextlib
import os
import platform
import secrets
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy
from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session, sessionmaker

from engine.mail.catalog import FileTemplateCatalog
from engine.services.sequences import save_version
from engine.services.template_sync import sync_templates
from engine.store import (
    Enrollment,
    EnrollmentStatus,
    Message,
    MessageStatus,
    Prospect,
    UnitOfWork,
    upgrade,
)

INSTALL_HINT = (
    "smtp-sink not found. It ships with Postfix; on Debian or Ubuntu:\n"
    "  echo 'postfix postfix/main_mailer_type select No configuration' "
    "| sudo debconf-set-selections\n"
    "  sudo DEBIAN_FRONTEND=noninteractive apt-get install -y postfix\n"
    '("No configuration" installs the programs without setting up a mail server.)'
)

SEQUENCE = """
key: bench-send
name: "Send benchmark"
enroll:
  when: {{field: status, eq: closed_lost}}
send_window: {{days: daily, from: "00:00", to: "24:00", timezone: UTC}}
from: {{name: "Dana Whitfield", email: dana@nurture.example.com}}
steps:
  - id: only
    email: {template}
    subject: "{{{{ prospect.first_name or 'Hi' }}}}, a note for {{{{ prospect.company }}}}"
    preheader: "Three stories and the add-ons picked for {{{{ prospect.company }}}}."
  - wait: 30d
"""
FIRST = ["Ana", "Zoë", "Bjørn", "Li", "Oluwaseun", "Mateo", "Chloé", "Sven", "Priya", "Tom"]
COMPANIES = ["Acme & Sons", "Nordlicht GmbH", "Café Olé", "Globex", "Initech", "Umbrella"]


# --- services ---------------------------------------------------------------------------


def find_smtp_sink() -> str | None:
    """smtp-sink lives in /usr/sbin, which is not on every user's PATH."""
    return shutil.which("smtp-sink") or shutil.which("smtp-sink", path="/usr/sbin:/usr/local/sbin")


def free_port() -> int:
    """A port free right now; smtp-sink binds it a moment later (a race a bench can live
    with, and one that fails loudly: the sink then exits and the script says so)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def smtp_sink(binary: str, workdir: Path) -> Iterator[int]:
    """Run smtp-sink on a free local port for the duration of the block; yield the port.

    As root it must drop privileges (``-u``) after binding, so it runs as ``nobody``; as
    anyone else ``-u`` fails (initgroups needs root) and is left out.
    """
    port = free_port()
    command = [binary]
    if os.geteuid() == 0:
        command += ["-u", "nobody"]
    command += [f"127.0.0.1:{port}", "1000"]
    log_path = workdir / "smtp-sink.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None:
                sys.exit(f"smtp-sink exited ({proc.returncode}): {log_path.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    sys.exit(f"smtp-sink did not listen on 127.0.0.1:{port} within 10 s")
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def postgres_reachable(admin_url: str) -> bool:
    """Whether to default to PostgreSQL, the production database, over SQLite."""
    try:
        import psycopg

        psycopg.connect(admin_url, connect_timeout=2).close()
    except Exception:
        return False
    return True


@dataclass
class Database:
    """Where this run's data lives, and the server version for the machine line."""

    url: str
    kind: str
    version: str


@contextlib.contextmanager
def database(kind: str, admin_url: str, workdir: Path) -> Iterator[Database]:
    """A migrated, empty database for this run only: a SQLite file in ``workdir`` (a real
    disk, as on a laptop install, so commits pay their fsync) or a throw-away PostgreSQL
    database, dropped afterwards."""
    if kind == "sqlite":
        url = f"sqlite:///{workdir / 'bench.sqlite3'}"
        upgrade(url)
        yield Database(url, kind, sqlite3.sqlite_version)
        return
    import psycopg

    name = f"nurture_bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        version = str(admin.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
    url = str(sqlalchemy.make_url(admin_url).set(database=name).render_as_string(False))
    try:
        upgrade(url)
        yield Database(url, kind, version)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- seeding ----------------------------------------------------------------------------


def seed(
    session_factory: sessionmaker[Session],
    catalog: FileTemplateCatalog,
    template: str,
    count: int,
    now: datetime,
) -> list[int]:
    """``count`` due messages, one per prospect, in bulk inserts; returns their ids in order.

    Prospects differ in name, company and a ``recommended`` list (the large template loops
    over it), so every email is rendered for real rather than served from a cache.
    """
    sync_templates(UnitOfWork(session_factory), catalog.root, now)  # workers send versions
    version, _ = save_version(
        UnitOfWork(session_factory), SEQUENCE.format(template=template), "bench.yaml", catalog, now
    )
    uow = UnitOfWork(session_factory)
    with uow:
        session = uow.session
        session.execute(
            insert(Prospect),
            [
                {
                    "email": f"recipient{n}@customer{n % 50}.example",
                    "first_name": FIRST[n % len(FIRST)],
                    "last_name": f"Recipient{n}",
                    "company": COMPANIES[n % len(COMPANIES)],
                    "title": "Head of Operations",
                    "status": "closed_lost",
                    "lost_reason": "price" if n % 2 else "timing",
                    "attributes": {
                        "recommended": [
                            {
                                "name": f"Automations pack {n % 7 + i}",
                                "url": f"https://example.com/addons/{n % 7 + i}?r={n}",
                                "price": 4 + i,
                            }
                            for i in range(3)
                        ]
                    },
                    "created_at": now,
                    "updated_at": now,
                }
                for n in range(count)
            ],
        )
        pids = session.scalars(select(Prospect.id).order_by(Prospect.id)).all()
        session.execute(
            insert(Enrollment),
            [
                {
                    "prospect_id": pid,
                    "sequence_id": version.sequence_id,
                    "sequence_version_id": version.id,
                    "status": EnrollmentStatus.ACTIVE,
                    "cursor": 1,
                    "state": {},
                    "next_run_at": now + timedelta(days=30),
                    "enrolled_at": now,
                    "updated_at": now,
                    "lock_version": 1,
                }
                for pid in pids
            ],
        )
        rows = session.execute(
            select(Enrollment.id, Enrollment.prospect_id).order_by(Enrollment.id)
        ).all()
        session.execute(
            insert(Message),
            [
                {
                    "enrollment_id": eid,
                    "prospect_id": pid,
                    "sequence_version_id": version.id,
                    "step_id": "only",
                    "iteration": 1,
                    "template_key": template,
                    "subject": "{{ prospect.first_name or 'Hi' }}, a note for "
                    "{{ prospect.company }}",
                    "status": MessageStatus.QUEUED,
                    "not_before": now,
                    "created_at": now,
                }
                for eid, pid in rows
            ],
        )
        uow.commit()
        ids = list(session.scalars(select(Message.id).order_by(Message.id)))
    # Fresh statistics, as a live database has: without them PostgreSQL plans the claim
    # and the policy joins for empty tables.
    with session_factory() as session:
        session.execute(text("ANALYZE"))
        session.commit()
    return ids


def sent_count(session_factory: sessionmaker[Session], ids: list[int]) -> int:
    """Rows of ``ids`` that ended ``sent``: a round that did not send everything it was
    timed for would report a meaningless rate."""
    with session_factory() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(Message)
                .where(Message.id.in_(ids), Message.status == MessageStatus.SENT)
            )
        )


def chunks(ids: list[int], size: int) -> list[list[int]]:
    """Batches as the dispatcher cuts them: ``send_batch_size`` ids, in id order."""
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def machine(db: Database) -> str:
    """What the figures were measured on, printed with them so they can be compared."""
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    postfix = "?"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        postconf = shutil.which("postconf") or "/usr/sbin/postconf"
        postfix = subprocess.run(
            [postconf, "-dh", "mail_version"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
    database = "PostgreSQL" if db.kind == "postgresql" else "SQLite"
    return (
        f"{len(os.sched_getaffinity(0))} CPUs (nproc), {model}; "
        f"Python {platform.python_version()}, SQLAlchemy {sqlalchemy.__version__}; "
        f"{database} {db.version}; Postfix smtp-sink {postfix}"
    )
