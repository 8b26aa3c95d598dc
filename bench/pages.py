"""The sequence pages at 100,000 prospects and a million events: p50/p95 per page.

    python bench/pages.py                          # 100k prospects, ~10 events each
    python bench/pages.py --prospects 20000 --runs 20
    python bench/pages.py --keep                   # leave the database for a look

Seeds a fresh PostgreSQL database with COPY (``tests/support/seeding.py``: the shipped
sequences, one enrollment and one sent email per prospect, events with their score ledger,
handoffs, suppressions), then requests each page through the Flask test client as a
signed-in marketer, the whole request (routing, access rule, queries, Jinja) timed: the
sequence list, each sequence's page (flow with its live figures), the editor, the live
check, the impact review, the history, and the simulator. The issue asks for 200 ms at
p95. Benchmarks print numbers; tests never assert on time.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.store import upgrade  # noqa: E402
from tests.support.databases import PostgresServer  # noqa: E402
from tests.support.seeding import analyze, seed  # noqa: E402
from tests.support.web import WebClient, web_app  # noqa: E402

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
KEYS = ("lost-on-price", "not-ready-timing", "went-dark-after-demo")
FIELDS = "first_name: Dana\nstatus: closed_lost\nlost_reason: price\n"
EVENTS = (
    "- {after: value-recap, delay: 2h, event: email.clicked}\n"
    "- {at: 9d, event: page.visited, data: {path: /pricing}}\n"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prospects", type=int, default=100_000)
    parser.add_argument("--events-per-prospect", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=50, help="requests per page")
    parser.add_argument("--keep", action="store_true", help="do not drop the database")
    args = parser.parse_args()

    server = PostgresServer()
    problem = server.check()
    if problem:
        sys.exit(f"PostgreSQL is needed: {problem}")
    name = server.new_name("nurture_pages")
    url = server.create_database(name)
    print(f"# bench/pages.py on {platform.python_implementation()} {platform.python_version()}")
    try:
        run(url, args)
    finally:
        if args.keep:
            print(f"kept: {url}")
        else:
            server.drop_database(name)
            print(f"dropped {name}")


def run(url: str, args: argparse.Namespace) -> None:
    upgrade(url)
    started = time.perf_counter()
    report = seed(
        url,
        NOW,
        prospects=args.prospects,
        events_per_prospect=args.events_per_prospect,
        due=args.prospects // 10,
        handoffs=args.prospects // 20,
        suppressions=args.prospects // 50,
    )
    analyze(url)
    print(
        f"seeded {report.prospects:,} prospects, {report.events:,} events, "
        f"{report.messages:,} sent emails, {report.handoffs:,} handoffs "
        f"in {time.perf_counter() - started:.0f} s\n"
    )
    with tempfile.TemporaryDirectory() as tmp, web_app(url, Path(tmp), NOW) as web:
        marketer = web.client("marketer")
        source = marketer.get(f"/sequences/{KEYS[0]}/edit").get_data(as_text=True)
        draft = _textarea(source)
        pages: list[tuple[str, Callable[[], int]]] = [
            ("list /sequences/", lambda: marketer.get("/sequences/").status_code),
        ]
        for key in KEYS:
            pages.append((f"sequence page ({key})", _get(marketer, f"/sequences/{key}")))
        pages += [
            ("editor", _get(marketer, f"/sequences/{KEYS[0]}/edit")),
            (
                "live check (htmx)",
                lambda: (
                    marketer.htmx(
                        f"/sequences/{KEYS[0]}/check", {"source": draft, "base": "1"}
                    ).status_code
                ),
            ),
            (
                "impact review",
                lambda: (
                    marketer.post(
                        f"/sequences/{KEYS[0]}/publish", {"source": draft + "# x\n", "base": "1"}
                    ).status_code
                ),
            ),
            ("history", _get(marketer, f"/sequences/{KEYS[0]}/versions")),
            (
                "simulator (typed prospect, 60 days)",
                lambda: (
                    marketer.post(
                        "/simulator/",
                        {"sequence": KEYS[0], "fields": FIELDS, "events": EVENTS, "days": "60"},
                    ).status_code
                ),
            ),
        ]
        print(f"| page ({args.runs} requests each) | p50 ms | p95 ms | max ms |")
        print("|---|---:|---:|---:|")
        for label, request in pages:
            assert request() == 200, label  # warm: the spec cache, the connection pool
            times = []
            for _ in range(args.runs):
                begun = time.perf_counter()
                status = request()
                times.append((time.perf_counter() - begun) * 1000)
                assert status == 200, (label, status)
            times.sort()
            p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
            print(f"| {label} | {statistics.median(times):.0f} | {p95:.0f} | {times[-1]:.0f} |")


def _get(client: WebClient, path: str) -> Callable[[], int]:
    return lambda: client.get(path).status_code


def _textarea(page: str) -> str:
    import html
    import re

    match = re.search(r'<textarea id="source"[^>]*>(.*?)</textarea>', page, re.S)
    assert match, "no editor on the page"
    return html.unescape(match.group(1))


if __name__ == "__main__":
    main()
