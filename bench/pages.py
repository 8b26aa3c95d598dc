"""Every page of the app at 100,000 prospects and a million events: p50/p95 per page.

    python bench/pages.py                          # 100k prospects, ~10 events each
    python bench/pages.py --prospects 20000 --runs 20
    python bench/pages.py --only inbox,funnel      # pages whose label contains a word
    python bench/pages.py --keep                   # leave the database for a look

Seeds a fresh PostgreSQL database with COPY (``tests/support/seeding.py``: the shipped
sequences, one enrollment and one sent email per prospect, events with their score ledger,
handoffs open, overdue and decided, suppressions), gives the handoffs what the services
write with them (sequence, message, decider, reject reasons), adds a sales rep who owns
some of the prospects and a sales manager, then requests each page through the Flask test
client as the role that uses it, the whole request (routing, access rule, queries, Jinja)
timed. The issues ask for 200 ms at p95. Benchmarks print numbers; tests never assert on
time.
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

from engine.services.accounts import create_user  # noqa: E402
from engine.store import upgrade  # noqa: E402
from tests.support.databases import PostgresServer  # noqa: E402
from tests.support.seeding import analyze, seed  # noqa: E402
from tests.support.web import PASSWORD, Web, WebClient, web_app  # noqa: E402

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
    parser.add_argument("--only", default="", help="comma-separated words to pick pages by label")
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
    # statistics first: without them the planner walked the messages' primary key for each
    # enrollment in the handoffs' LATERAL lookup (minutes instead of a second)
    analyze(url)
    _complete_handoffs(url)
    analyze(url)
    print(
        f"seeded {report.prospects:,} prospects, {report.events:,} events, "
        f"{report.messages:,} sent emails, {report.handoffs:,} handoffs "
        f"in {time.perf_counter() - started:.0f} s\n"
    )
    only = [word.strip() for word in args.only.split(",") if word.strip()]
    with tempfile.TemporaryDirectory() as tmp, web_app(url, Path(tmp), NOW) as web:
        pages = _sequence_pages(web) + _sales_pages(web, url) + _other_pages(web, url)
        print(f"| page ({args.runs} requests each) | p50 ms | p95 ms | max ms |")
        print("|---|---:|---:|---:|")
        for label, request in pages:
            if only and not any(word in label for word in only):
                continue
            _measure(label, request, args.runs)


def _measure(label: str, request: Callable[[], int], runs: int) -> None:
    assert request() == 200, label  # warm: the spec cache, the connection pool
    times = []
    for _ in range(runs):
        begun = time.perf_counter()
        status = request()
        times.append((time.perf_counter() - begun) * 1000)
        assert status == 200, (label, status)
    times.sort()
    p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
    print(f"| {label} | {statistics.median(times):.0f} | {p95:.0f} | {times[-1]:.0f} |", flush=True)


Page = tuple[str, Callable[[], int]]


def _sequence_pages(web: Web) -> list[Page]:
    """The sequence list, each sequence's page, the editor, its live check, the impact
    review, the history and the simulator, as a marketer."""
    marketer = web.client("marketer")
    source = marketer.get(f"/sequences/{KEYS[0]}/edit").get_data(as_text=True)
    draft = _textarea(source)
    pages: list[Page] = [("list /sequences/", _get(marketer, "/sequences/"))]
    for key in KEYS:
        pages.append((f"sequence page ({key})", _get(marketer, f"/sequences/{key}")))
    pages.extend(
        [
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
    )
    return pages


REP = "rep0@seller.example"
MANAGER = "manager@seller.example"


def _sales_pages(web: Web, url: str) -> list[Page]:
    """The inbox as a rep (the seeded owner ``rep0``, ~1/40 of the owned prospects) and as a
    manager (the whole team), a lead page, the funnel, and the prospects a rep may see."""
    create_user(web.uow(), REP, "Rita Rep", "sales", PASSWORD, NOW)
    create_user(web.uow(), MANAGER, "Max Manager", "sales", PASSWORD, NOW, sales_manager=True)
    rep, manager = WebClient(web.app.test_client()), WebClient(web.app.test_client())
    for client, email in ((rep, REP), (manager, MANAGER)):
        assert client.login(email).status_code == 302, email
    marketer = web.client("marketer")
    open_lead, rep_lead, prospect = _ids(url)
    _tell_the_story(web, (open_lead, rep_lead))
    return [
        ("inbox, open, as a rep", _get(rep, "/inbox/")),
        ("inbox, decided in 30 days, as a rep", _get(rep, "/inbox/?show=decided")),
        ("inbox, open, as a manager (team)", _get(manager, "/inbox/")),
        ("inbox, decided in 30 days, as a manager", _get(manager, "/inbox/?show=decided")),
        ("lead page, as a manager", _get(manager, f"/inbox/{open_lead}")),
        ("lead page, the rep's own", _get(rep, f"/inbox/{rep_lead}")),
        ("funnel, default period (90 days)", _get(marketer, "/funnel/")),
        (
            "funnel, a year, one sequence",
            _get(marketer, f"/funnel/?from=2025-03-02&to=2026-03-02&sequence={KEYS[0]}"),
        ),
        ("funnel, filtered by owner", _get(marketer, f"/funnel/?owner={REP}")),
        ("funnel, as a rep", _get(rep, "/funnel/")),
        ("prospects search, no filter", _get(marketer, "/prospects/")),
        ("prospects search, email contains", _get(marketer, "/prospects/?email=p00012")),
        ("prospects search, by sequence", _get(marketer, f"/prospects/?sequence={KEYS[1]}")),
        ("prospects search, as a rep", _get(rep, "/prospects/")),
        ("prospect page", _get(marketer, f"/prospects/{prospect}")),
    ]


def _other_pages(web: Web, url: str) -> list[Page]:
    """The reports, the qualified-lead definition, the templates, imports and inbound."""
    marketer = web.client("marketer")
    pages: list[Page] = [
        ("reports index", _get(marketer, "/reports/")),
    ]
    for key in KEYS:
        pages.append((f"report ({key})", _get(marketer, f"/reports/{key}")))
    pages.extend(
        [
            ("qualified-lead page", _get(marketer, "/qualified/")),
            ("templates list", _get(marketer, "/templates/")),
            ("template page", _get(marketer, "/templates/price/value-recap.mjml")),
            ("imports list", _get(marketer, "/imports/")),
            ("inbound review list", _get(marketer, "/inbound/")),
            ("home", _get(marketer, "/")),
        ]
    )
    return pages


def _complete_handoffs(url: str) -> None:
    """Give the seeded handoffs what ``qualify`` and the decisions write: the sequence and
    the email that produced the lead, and for decided ones who decided and, when rejected,
    a reason and a comment (the reports and the funnel read them)."""
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        conn.execute(
            """
            UPDATE handoffs h SET
                sequence_id = v.sequence_id, enrollment_id = e.id, message_id = m.id
            FROM enrollments e
            JOIN sequence_versions v ON v.id = e.sequence_version_id
            LEFT JOIN LATERAL (
                SELECT id FROM messages WHERE enrollment_id = e.id ORDER BY id LIMIT 1
            ) m ON true
            WHERE e.prospect_id = h.prospect_id
            """
        )
        conn.execute(
            """
            UPDATE handoffs SET
                decided_by = 'manager@seller.example',
                reject_reason = CASE WHEN status = 'rejected'
                    THEN (ARRAY['not_ready','wrong_person','no_budget','bad_data',
                                'unreachable','other'])[1 + id %% 6] END,
                comment = CASE WHEN status = 'rejected' AND id %% 3 = 0
                    THEN 'Talked to them: not this quarter.' END,
                decided_at = CASE WHEN id %% 10 = 0
                    THEN %(now)s - make_interval(days => (id %% 30)::int) ELSE decided_at END
            WHERE status IN ('accepted', 'rejected')
            """,
            {"now": NOW},
        )


def _tell_the_story(web: Web, handoff_ids: tuple[int, ...]) -> None:
    """The seed's handoffs carry no context (the frozen story the lead page shows): build
    it for the leads the bench opens, with the service that builds it at qualification."""
    from sqlalchemy import select

    from engine.core.scoring import Requalify
    from engine.services.handoffs import build_context
    from engine.services.nurture import active_enrollment
    from engine.services.scoring import current_scoring
    from engine.store import Event, Handoff, Prospect

    with web.uow() as uow:
        session = uow.session
        spec = current_scoring(session)
        assert spec is not None, "the seed syncs the scoring rules"
        for handoff in session.scalars(select(Handoff).where(Handoff.id.in_(handoff_ids))):
            prospect = session.get_one(Prospect, handoff.prospect_id)
            event = session.scalars(
                select(Event)
                .where(Event.prospect_id == prospect.id)
                .order_by(Event.occurred_at.desc())
                .limit(1)
            ).one()
            handoff.context = build_context(
                session,
                prospect,
                active_enrollment(session, prospect.id, lock=False),
                event,
                Requalify("score crossed the threshold", handoff.score),
                spec,
                [],
                NOW,
            )
        uow.commit()


def _ids(url: str) -> tuple[int, int, int]:
    """An open handoff, an open handoff of the rep's, and a prospect with a full history."""
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        rows = conn.execute(
            """
            SELECT
                (SELECT min(id) FROM handoffs WHERE status = 'open'),
                (SELECT min(h.id) FROM handoffs h JOIN prospects p ON p.id = h.prospect_id
                  WHERE h.status IN ('open', 'overdue') AND p.owner_email = %(rep)s),
                (SELECT prospect_id FROM events GROUP BY prospect_id
                  ORDER BY count(*) DESC LIMIT 1)
            """,
            {"rep": REP},
        ).fetchone()
    assert rows and all(rows), f"the seed lacks {rows}"
    return int(rows[0]), int(rows[1]), int(rows[2])


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
