"""CPU per request of the tracking endpoints, in this process, without a server or a client.

    PYTHONPATH=. .venv/bin/python bench/tracking_profile.py --redis redis://127.0.0.1:6379/5
    PYTHONPATH=. .venv/bin/python bench/tracking_profile.py --profile pixel --top 30

The latency benchmark (``bench/tracking.py``) measures the server, the client and the
machine as much as the app; this measures only what the app spends on each request: the
WSGI app called directly with a prepared environ (no test client, no sockets), on a fresh
PostgreSQL database seeded as ``tracking.py`` seeds it, with the hits left unjudged. Each
scenario is timed in ``process_time`` (CPU of this process: PostgreSQL's backend is not in
it) over ``--requests`` calls after a warm-up, ``--rounds`` times, and the best round
reported, next to the trivial route's: a regression or a saving shows here first, without
waiting for a quiet machine. ``--profile`` runs one scenario under cProfile.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from werkzeug.test import EnvironBuilder  # noqa: E402

from bench.ingest import database, seed  # noqa: E402
from bench.serving import BASELINE_PATH, drop, load, with_baseline  # noqa: E402
from bench.tracking import BROWSER, SECRET, seed_messages  # noqa: E402
from engine.config import Settings  # noqa: E402
from engine.mail.tokens import TokenSigner  # noqa: E402
from engine.store import upgrade  # noqa: E402
from webapp import create_app  # noqa: E402


def _caller(app: Any, path: str) -> Callable[[], None]:
    """One request to ``path`` through the WSGI app, its body read and closed, as a server
    would (the environ built once and copied per call)."""
    base = EnvironBuilder(
        path=path, headers={"User-Agent": BROWSER}, environ_base={"REMOTE_ADDR": "10.0.0.7"}
    ).get_environ()

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        start_response.status = status  # type: ignore[attr-defined]

    def call() -> None:
        body = app(dict(base), start_response)
        try:
            for _ in body:
                pass
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()

    call()
    status = start_response.status  # type: ignore[attr-defined]
    if not status.startswith(("200", "302")):
        raise SystemExit(f"{path}: {status}")
    return call


def scenarios(signer: TokenSigner, messages: list[int]) -> dict[str, str]:
    first = messages[0]
    return {
        "trivial 200": BASELINE_PATH,
        "open pixel": f"/t/o/{signer.open(first)}.gif",
        "click redirect": f"/t/c/{signer.click(first, 1)}",
        "unsubscribe page": f"/u/{signer.unsubscribe(first)}",
    }


def per_request(call: Callable[[], None], requests: int, rounds: int) -> float:
    """The best round's CPU seconds per request."""
    for _ in range(max(20, requests // 10)):
        call()
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(requests):
            call()
        best = min(best, (time.process_time() - start) / requests)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--redis", default=None, help="the queue (default: in-process)")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--profile",
        choices=["trivial", "pixel", "click", "unsubscribe"],
    )
    parser.add_argument("--top", type=int, default=35)
    parser.add_argument("--no-notify", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    url, pg_name = database("postgresql")
    try:
        upgrade(url)
        now = datetime.now(UTC)
        seed(url, 5, now, per_depth=0)
        messages = seed_messages(url, 5, now)
        settings = Settings(
            database_url=url, secret_key=SECRET, log_level="WARNING", redis_url=args.redis
        )
        app = with_baseline(create_app(settings))
        if args.no_notify:
            notifier = app.extensions["nurture"].drain_notifier
            notifier.hit_recorded = lambda: None
        try:
            signer = TokenSigner(SECRET)
            calls = {name: _caller(app, path) for name, path in scenarios(signer, messages).items()}
            if args.profile:
                name = next(n for n in calls if args.profile in n)
                call = calls[name]
                per_request(call, 200, 1)
                profiler = cProfile.Profile(time.process_time)
                profiler.enable()
                for _ in range(args.requests):
                    call()
                profiler.disable()
                pstats.Stats(profiler).sort_stats("tottime").print_stats(args.top)
                pstats.Stats(profiler).sort_stats("cumulative").print_stats(args.top)
                return
            print(f"load {load()}; best of {args.rounds} rounds of {args.requests} requests")
            floor = None
            for name, call in calls.items():
                cpu = per_request(call, args.requests, args.rounds)
                floor = floor or cpu
                print(f"  {name:<18} {cpu * 1e6:7.0f} us CPU   {cpu / floor:4.2f}x trivial")
        finally:
            app.extensions["nurture"].close()
    finally:
        drop(pg_name)


if __name__ == "__main__":
    main()
