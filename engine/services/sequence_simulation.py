"""The simulator in the browser: ``nurture simulate`` for a stored sequence or an unsaved
draft, a real prospect or typed-in fields, and a script of events.

The timeline is the pure core's own (``engine.core.simulate``), so it is what the engine
would do; this module only gathers the inputs (reading the prospect and the sequence),
checks them with the same rules as the command line, and names each email's template and
subject so the page can preview it. Nothing is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import yaml
from pydantic import ValidationError
from sqlalchemy import select

from engine.core.simulate import SimEvent, simulate
from engine.core.wording import say_condition
from engine.exceptions import InvalidInputError
from engine.services.loading import prospect_facts, spec_by_checksum
from engine.services.sequence_publish import check_draft
from engine.spec.catalog import PROSPECT_FIELDS
from engine.spec.errors import SpecProblem
from engine.spec.sequence import EmailStep, SequenceSpec, SplitStep
from engine.spec.simulation import SCRIPT, check_forced_variants
from engine.store import Prospect, Sequence, SequenceVersion, UnitOfWork

__all__ = [
    "MAX_DAYS",
    "SimulationRequest",
    "SimulationView",
    "SplitChoice",
    "TimelineRow",
    "next_monday",
    "run_simulation",
    "sequence_choices",
    "split_choices",
]

MAX_DAYS = 365
MAX_EVENTS = 200
MAX_TEXT = 20_000


@dataclass(frozen=True)
class SimulationRequest:
    """What the form sends: a sequence key or a draft, who, what happens, for how long."""

    sequence: str | None = None
    draft: str | None = None
    prospect_email: str | None = None
    fields: str = ""  # YAML/JSON mapping of prospect fields
    events: str = ""  # YAML/JSON list, the format of ``nurture simulate --events``
    days: int = 60
    start: datetime | None = None
    variants: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TimelineRow:
    at: datetime
    day: float
    kind: str
    step_id: str | None
    detail: str
    send_at: datetime | None  # an email held for the send window goes out then
    template: str | None = None
    subject: str | None = None
    preheader: str | None = None


@dataclass(frozen=True)
class SimulationView:
    key: str
    name: str
    source: str  # "version 3" or "your unsaved draft"
    start: datetime
    enrolled: bool
    outcome: str
    rows: list[TimelineRow]
    prospect_label: str
    prospect_email: str | None  # the real prospect's, for the previews
    fields: dict[str, Any]  # the typed-in fields, for the previews
    spec_problems: list[SpecProblem] = field(default_factory=list)


def next_monday(now: datetime) -> datetime:
    """The default start: next Monday 10:00 UTC (as ``nurture simulate``)."""
    today = now.replace(hour=10, minute=0, second=0, microsecond=0)
    return today + timedelta(days=(7 - today.weekday()) % 7 or 7)


def sequence_choices(uow: UnitOfWork) -> list[tuple[str, str]]:
    """(key, name) of every sequence with a version, by name."""
    with uow:
        rows = uow.session.execute(
            select(Sequence.key, Sequence.name)
            .where(Sequence.current_version_id.is_not(None))
            .order_by(Sequence.name)
        ).all()
    return [(key, name) for key, name in rows]


@dataclass(frozen=True)
class SplitChoice:
    """A split step of the simulated sequence and its variants, for the form's field that
    forces one (empty: drawn as production draws it)."""

    step_id: str
    variants: list[str]


def split_choices(uow_factory: Any, sequence: str | None, draft: str | None) -> list[SplitChoice]:
    """The split steps of the sequence (or the valid draft) the form simulates, in order;
    none when there is no such sequence yet or the draft is not valid."""
    try:
        spec, _ = _spec(uow_factory, SimulationRequest(sequence=sequence, draft=draft))
    except InvalidInputError:
        return []
    return [
        SplitChoice(step.id, [v.variant for v in step.split])
        for step in spec.steps
        if isinstance(step, SplitStep)
    ]


def run_simulation(
    uow_factory: Any, request: SimulationRequest, now: datetime, default_timezone: str
) -> SimulationView:
    """Rehearse ``request``; raises :class:`InvalidInputError` naming the field at fault
    (``sequence``, ``draft``, ``prospect``, ``fields``, ``events``, ``days``)."""
    if not 1 <= request.days <= MAX_DAYS:
        raise InvalidInputError(f"days: between 1 and {MAX_DAYS}", field="days")
    spec, source = _spec(uow_factory, request)
    prospect, label, email, fields = _prospect(uow_factory(), request)
    script = _script(request.events)
    forced = {k: v for k, v in request.variants.items() if v}
    problems = check_forced_variants(spec, forced)
    if problems:
        raise InvalidInputError("variants: " + "; ".join(problems), field="variants")
    start = request.start or next_monday(now)
    sim = simulate(spec, prospect, script, start, request.days, default_timezone, forced)
    emails = {
        step_id: step
        for step_id, step in zip(spec.step_ids(), spec.steps, strict=True)
        if isinstance(step, EmailStep)
    }
    rows = []
    for line in sim.lines:
        step = emails.get(line.step_id or "") if line.kind == "email" else None
        detail = line.detail
        if line.kind == "enrolled":
            detail = f"They enter: {say_condition(spec.enroll.when)}."
        elif not sim.enrolled and line.kind == "note":
            detail = f"They would not enter: the rule is that {say_condition(spec.enroll.when)}."
        rows.append(
            TimelineRow(
                at=line.at,
                day=(line.at - start).total_seconds() / 86400,
                kind=line.kind,
                step_id=line.step_id,
                detail=detail,
                send_at=line.send_at if line.send_at and line.send_at != line.at else None,
                template=step.email if step else None,
                subject=step.subject if step else None,
                preheader=step.preheader if step else None,
            )
        )
    return SimulationView(
        spec.key, spec.name, source, start, sim.enrolled, sim.outcome, rows, label, email, fields
    )


def _spec(uow_factory: Any, request: SimulationRequest) -> tuple[SequenceSpec, str]:
    if request.draft is not None:
        if len(request.draft) > 256 * 1024:
            raise InvalidInputError("draft: larger than 256 KB", field="draft")
        draft = check_draft(uow_factory(), request.draft, request.sequence or None)
        if draft.spec is None:
            first = draft.problems[0] if draft.problems else None
            where = f"line {first.line}: " if first and first.line else ""
            message = first.message if first else "not a valid sequence"
            raise InvalidInputError(
                f"draft: the draft is not valid yet ({where}{message})", field="draft"
            )
        return draft.spec, "your unsaved draft"
    uow = uow_factory()
    with uow:
        row = uow.session.execute(
            select(SequenceVersion.id, SequenceVersion.checksum, SequenceVersion.version)
            .join(Sequence, Sequence.current_version_id == SequenceVersion.id)
            .where(Sequence.key == (request.sequence or ""))
        ).first()
        if row is None:
            raise InvalidInputError("sequence: choose a sequence", field="sequence")
        return spec_by_checksum(uow.session, row[0], row[1]), f"version {row[2]}"


def _prospect(
    uow: UnitOfWork, request: SimulationRequest
) -> tuple[dict[str, Any], str, str | None, dict[str, Any]]:
    email = (request.prospect_email or "").strip().lower()
    if email:
        if len(email) > 320:
            raise InvalidInputError("prospect: at most 320 characters", field="prospect")
        with uow:
            prospect = uow.session.scalars(select(Prospect).where(Prospect.email == email)).first()
            if prospect is None or prospect.erased_at is not None:
                raise InvalidInputError(
                    f"prospect: nobody has the address {email!r}", field="prospect"
                )
            facts = prospect_facts(prospect) | {"id": prospect.id}
        return facts, f"{email} (as stored now)", email, {}
    fields = _mapping(request.fields)
    unknown = [k for k in fields if k not in PROSPECT_FIELDS and k not in ("id", "attributes")]
    if unknown:
        raise InvalidInputError(
            f"fields: unknown field {unknown[0]!r}; use {', '.join(PROSPECT_FIELDS)} or attributes",
            field="fields",
        )
    label = ", ".join(f"{k}: {v}" for k, v in fields.items()) or "a prospect with no fields"
    return dict(fields), label, None, fields


def _mapping(text: str) -> dict[str, Any]:
    data = _load(text, "fields") if text.strip() else {}
    if not isinstance(data, dict):
        raise InvalidInputError(
            "fields: write one field per line, like 'status: closed_lost'", field="fields"
        )
    return {str(k): v for k, v in data.items()}


def _script(text: str) -> list[SimEvent]:
    data = _load(text, "events") if text.strip() else []
    if not isinstance(data, list):
        raise InvalidInputError(
            "events: a list, one '- {at: 3d, event: page.visited}' per line", field="events"
        )
    if len(data) > MAX_EVENTS:
        raise InvalidInputError(f"events: at most {MAX_EVENTS}", field="events")
    try:
        script = SCRIPT.validate_python(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = err["loc"][0] if err["loc"] else 0
        number = where + 1 if isinstance(where, int) else where
        message = str(err["msg"]).removeprefix("Value error, ")
        raise InvalidInputError(f"events: event {number}: {message}", field="events") from None
    return [SimEvent(e.event, e.at, e.after, e.delay, e.data, e.machine) for e in script]


def _load(text: str, name: str) -> Any:
    if len(text) > MAX_TEXT:
        raise InvalidInputError(f"{name}: at most {MAX_TEXT:,} characters", field=name)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise InvalidInputError(f"{name}: not YAML or JSON{where}", field=name) from None
