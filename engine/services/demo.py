"""``nurture demo``: a realistic workspace, made by the engine itself on a virtual clock.

A few hundred prospects lost on price, on timing and after a demo arrive from a made-up
CRM over 60 days; the real services do the rest, hour by virtual hour: ``upsert_prospect``
enrolls them, the tick advances the shipped sequences, ``send_batch`` renders and delivers
each email to the local outbox, the tracking services judge the opens and clicks (privacy
proxies and link scanners included) and score them, handoffs are created when a score
crosses the threshold, and sales accept or reject them with a reason. Every screen then has
honest data: nothing is written around the engine.

Deterministic: one seed decides the people and every reaction (each drawn from its own
``Random`` keyed by seed, person, step and time, never by a row id, so neither the order
the engine works in nor the database changes them). It refuses a database that already
has prospects, see :class:`DemoRefusedError`.
"""

from __future__ import annotations

import heapq
import logging
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from engine.clock import ManualClock
from engine.core.bots import RequestInfo
from engine.core.policy import FrequencyCap
from engine.exceptions import ConflictError, NotFoundError
from engine.services.alerts import deliver_alerts, plan_alerts
from engine.services.delivery import Mailer, send_batch
from engine.services.demo_people import REPS, DemoPerson, people
from engine.services.demo_reactions import Action, SentEmail, decision, reactions
from engine.services.dispatch import recover_and_dispatch
from engine.services.events import record_event
from engine.services.handoffs import accept_handoff, reject_handoff
from engine.services.ports import WebhookPoster
from engine.services.prospects import upsert_prospect
from engine.services.reentry import reenter_due
from engine.services.schemas import EngineEventInput
from engine.services.tick import tick
from engine.services.tracking import record_honeypot, record_open, resolve_click
from engine.store import (
    Enrollment,
    EnrollmentStatus,
    Event,
    Handoff,
    HandoffStatus,
    Message,
    MessageStatus,
    Prospect,
    Sequence,
    UnitOfWork,
    User,
    UserRole,
)

__all__ = ["DemoRefusedError", "DemoReport", "load_demo"]

log = logging.getLogger(__name__)

DAYS = 60
PROSPECTS = 300
SEED = 2026
GRAIN = timedelta(minutes=5)
KEEP_OPEN = timedelta(days=7)  # the app's sales users' handoffs of the last week stay open


class DemoRefusedError(ConflictError):
    """The database already holds prospects: the demo only fills an empty workspace.

    Mixing made-up people into real ones would put fake handoffs in a real sales inbox and
    run 60 virtual days of the real sequences over real prospects; and a second run could
    not tell its own rows from yours. A fresh database costs one environment variable."""


@dataclass
class DemoReport:
    """What the demo made, counted from the database afterwards."""

    prospects: int = 0
    emails_sent: int = 0
    events: dict[str, int] = field(default_factory=dict)  # "email.opened (machine)": n
    handoffs: dict[str, int] = field(default_factory=dict)  # status: n
    rejections: dict[str, int] = field(default_factory=dict)  # reason: n
    statuses: dict[str, int] = field(default_factory=dict)  # prospect status: n
    started: datetime | None = None
    ended: datetime | None = None


def load_demo(
    uow_factory: Callable[[], UnitOfWork],
    mailer: Mailer,
    post: WebhookPoster,
    clock: ManualClock,
    *,
    days: int = DAYS,
    count: int = PROSPECTS,
    seed: int = SEED,
    progress: Callable[[int, int], None] | None = None,
) -> DemoReport:
    """Run ``days`` virtual days from ``clock.now()`` with ``count`` made-up prospects.

    ``mailer`` must deliver to the local outbox and run on ``clock`` (``nurture demo``
    builds it so): the demo sends ~650 emails. The app's sales users own some prospects;
    their handoffs of the last week are left open for them. ``progress(day, days)`` is called each
    virtual day. Raises :class:`DemoRefusedError` for a database with prospects, and
    :class:`NotFoundError` when no sequence is stored (``nurture init`` stores them).
    """
    _check_empty(uow_factory())
    run = _Run(uow_factory, mailer, post, clock, seed)
    start = clock.now()
    run.users = _sales_users(uow_factory())
    run.keep_open_from = start + timedelta(days=days) - KEEP_OPEN
    run.arrivals = people(seed, count, start, days, (*REPS, *run.users))
    end = start + timedelta(days=days)
    day = -1
    while clock.now() < end:
        clock.set(run.next_moment(clock.now(), end))
        now = clock.now()
        run.step(now)
        if progress is not None and (now - start).days != day:
            day = (now - start).days
            progress(day, days)
    report = _count(uow_factory())
    report.started, report.ended = start, clock.now()
    return report


def _check_empty(uow: UnitOfWork) -> None:
    with uow:
        prospects = uow.session.scalar(select(func.count()).select_from(Prospect)) or 0
        sequences = uow.session.scalar(select(func.count()).select_from(Sequence)) or 0
    if prospects:
        raise DemoRefusedError(
            f"this database already has {prospects:,} prospect{'s' * (prospects != 1)}: "
            "nurture demo only fills an empty workspace, so that made-up people never mix "
            "with real ones. Point NURTURE_DATABASE_URL at a new database (for example "
            "sqlite:///demo.db) and run it again."
        )
    if not sequences:
        raise NotFoundError("no sequence is stored yet: run `nurture init` first")


def _sales_users(uow: UnitOfWork) -> tuple[str, ...]:
    """The app's own sales users: they own some demo prospects too, and the demo leaves
    their handoffs of the last week open, for them to decide in their inbox."""
    with uow:
        users = uow.session.scalars(
            select(User.email)
            .where(User.role == UserRole.SALES, User.active.is_(True))
            .order_by(User.email)
        ).all()
    return tuple(users)


class _Run:
    """The demo's state between virtual hours: who arrives when, what happens next."""

    def __init__(
        self,
        uow_factory: Callable[[], UnitOfWork],
        mailer: Mailer,
        post: WebhookPoster,
        clock: ManualClock,
        seed: int,
    ) -> None:
        self.uow, self.mailer, self.post, self.clock, self.seed = (
            uow_factory,
            mailer,
            post,
            clock,
            seed,
        )
        settings = mailer.settings
        self.cap = FrequencyCap(
            settings.frequency_cap, timedelta(days=settings.frequency_window_days)
        )
        self.arrivals: list[DemoPerson] = []
        self.users: tuple[str, ...] = ()
        self.keep_open_from = clock.now()
        self.by_id: dict[int, DemoPerson] = {}
        self.pending: list[Action] = []  # a heap, by time
        self.counter = 0
        self.last_handoff = 0

    def _rng(self, *parts: object) -> random.Random:
        return random.Random("|".join(str(p) for p in (self.seed, *parts)))

    def _plan(self, actions: list[Action]) -> None:
        for action in actions:
            self.counter += 1
            action.order = self.counter
            heapq.heappush(self.pending, action)

    def next_moment(self, now: datetime, end: datetime) -> datetime:
        """When anything happens next: an arrival, a reaction, an enrollment or email due.

        Jumping there instead of ticking every few minutes as the scheduler does is what
        keeps 60 days short; the tick at that moment does what the scheduler's would have
        done by then. Never past ``end``."""
        with self.uow() as uow:
            due = [
                uow.session.scalar(
                    select(func.min(Enrollment.next_run_at)).where(
                        Enrollment.status == EnrollmentStatus.ACTIVE
                    )
                ),
                uow.session.scalar(
                    select(func.min(Message.not_before)).where(
                        Message.status == MessageStatus.QUEUED
                    )
                ),
                uow.session.scalar(  # an SLA missed: the alert escalates
                    select(func.min(Handoff.due_at)).where(Handoff.status == HandoffStatus.OPEN)
                ),
            ]
        if self.arrivals:
            due.append(self.arrivals[0].arrives_at)
        if self.pending:
            due.append(self.pending[0].at)
        later = [_aware(at) for at in due if at is not None and _aware(at) > now]
        return min([_round_up(at) for at in later] + [end])

    def step(self, now: datetime) -> None:
        """One virtual hour: arrivals, the world's reactions, then the engine's tick."""
        while self.arrivals and self.arrivals[0].arrives_at <= now:
            person = self.arrivals.pop(0)
            result = upsert_prospect(self.uow(), dict(person.fields), person.arrives_at)
            self.by_id[result.prospect_id] = person
        acted = False
        while self.pending and self.pending[0].at <= now:
            self._act(heapq.heappop(self.pending))
            acted = True
        if acted:
            self._decisions()
        tick(self.uow, now, batch_size=self.mailer.settings.tick_batch_size, cap=self.cap)
        reenter_due(self.uow, now)  # as ``tick_job`` does: waits that ended re-enroll
        plan = recover_and_dispatch(self.uow(), now, self.mailer.settings)
        for batch in plan.batches:
            sent = send_batch(self.uow, self.mailer, batch).sent_ids
            if sent:
                self._react(sent)
        for handoff_id in plan_alerts(self.uow(), now, self.mailer.settings):
            deliver_alerts(self.uow, self.mailer, handoff_id, self.post)

    def _react(self, message_ids: list[int]) -> None:
        with self.uow() as uow:
            rows = uow.session.execute(
                select(
                    Message.id,
                    Message.prospect_id,
                    Message.sent_at,
                    Message.links,
                    Message.step_id,
                    Message.iteration,
                ).where(Message.id.in_(message_ids), Message.status == MessageStatus.SENT)
            ).all()
        for message_id, prospect_id, sent_at, links, step_id, iteration in rows:
            person = self.by_id.get(prospect_id)
            if person is None or sent_at is None:
                continue
            email = SentEmail(message_id, prospect_id, sent_at, list(links or []))
            # Keyed by who and which step, not by row id: ids depend on the database.
            rng = self._rng(person.email, step_id, iteration, _aware(sent_at).isoformat())
            self._plan(reactions(rng, person, email))

    def _act(self, action: Action) -> None:
        args, at = action.args, action.at
        signer = self.mailer.signer
        if action.kind == "decide":
            self._decide(action)
            return
        if action.kind == "crm":  # the CRM moves the deal on, as its sync would say
            upsert_prospect(self.uow(), dict(args), at)
            return
        if action.kind == "event":
            payload = {**args, "occurred_at": at, "source": "demo"}
            record_event(self.uow(), EngineEventInput.model_validate(payload), at)
            return
        request = RequestInfo(user_agent=args["user_agent"], ip=args["ip"])
        if action.kind == "open":
            record_open(self.uow(), signer.open(args["message_id"]), request, at, signer=signer)
            return
        token = signer.click(args["message_id"], args["link_index"])
        if action.kind == "honeypot":
            record_honeypot(self.uow(), token, request, at, signer=signer)
            return
        try:
            resolve_click(self.uow(), token, request, at, signer=signer)
        except NotFoundError:  # a link the engine does not redirect (not http)
            log.debug("demo: message %s has no link %s", args["message_id"], args["link_index"])

    def _decisions(self) -> None:
        """Plan sales' answer to every handoff created since the last look."""
        with self.uow() as uow:
            rows = uow.session.execute(
                select(Handoff.id, Handoff.created_at, Prospect.owner_email, Prospect.email)
                .join(Prospect, Prospect.id == Handoff.prospect_id)
                .where(Handoff.id > self.last_handoff)
                .order_by(Handoff.id)
            ).all()
        for handoff_id, created_at, owner, prospect in rows:
            self.last_handoff = handoff_id
            by = owner or REPS[0]
            if owner in self.users:
                if _aware(created_at) >= self.keep_open_from:
                    continue  # this week's: for the user to decide in their inbox
                by = REPS[0]  # older ones: the made-up sales manager decided them
            rng = self._rng("handoff", prospect, _aware(created_at).isoformat())
            self._plan(decision(rng, created_at, handoff_id, by, prospect))

    def _decide(self, action: Action) -> None:
        args, at = action.args, action.at
        try:
            if args["accept"]:
                accept_handoff(self.uow(), args["handoff_id"], args["by"], at, args["comment"])
            else:
                reject_handoff(
                    self.uow(), args["handoff_id"], args["reason"], args["by"], at, args["comment"]
                )
        except ConflictError:  # decided already, or withdrawn: sales was too late
            log.debug("demo: handoff %s was no longer open", args["handoff_id"])


def _round_up(at: datetime) -> datetime:
    """The next whole ``GRAIN`` (what happens within five minutes is handled together)."""
    past = (at - at.replace(minute=0, second=0, microsecond=0)) % GRAIN
    return at if not past else at + (GRAIN - past)


def _aware(at: datetime) -> datetime:
    """SQLite hands instants back without their zone; they are UTC."""
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _count(uow: UnitOfWork) -> DemoReport:
    with uow:
        session = uow.session
        report = DemoReport(
            prospects=session.scalar(select(func.count()).select_from(Prospect)) or 0,
            emails_sent=session.scalar(
                select(func.count())
                .select_from(Message)
                .where(Message.status == MessageStatus.SENT)
            )
            or 0,
        )
        events: Counter[str] = Counter()
        for type_, machine, n in session.execute(
            select(Event.type, Event.machine, func.count()).group_by(Event.type, Event.machine)
        ):
            judged = type_ in ("email.opened", "email.clicked")
            events[f"{type_} ({'machine' if machine else 'human'})" if judged else type_] += n
        report.events = dict(sorted(events.items()))
        report.handoffs = {
            str(status): n
            for status, n in session.execute(
                select(Handoff.status, func.count()).group_by(Handoff.status)
            )
        }
        report.statuses = {
            str(status): n
            for status, n in session.execute(
                select(Prospect.status, func.count()).group_by(Prospect.status)
            )
        }
        report.rejections = {
            str(reason): n
            for reason, n in session.execute(
                select(Handoff.reject_reason, func.count())
                .where(Handoff.reject_reason.is_not(None))
                .group_by(Handoff.reject_reason)
            )
        }
    return report
