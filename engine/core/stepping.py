"""Advance one enrollment through its sequence: the heart of the rules engine.

``advance`` runs steps from the cursor until the enrollment must wait or ends. It is
deterministic in (spec, state, facts, now), which is what makes simulation, property tests
and crash-safe retries possible: running it twice on the same inputs decides the same.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from engine.core.conditions import describe, explain
from engine.core.decisions import AssignVariant, Exit, ExitKind, SendEmail, TraceEntry, WakeAt
from engine.core.enrollment_state import EnrollmentState
from engine.core.facts import EventFact, Facts
from engine.core.splits import draw, unit_of
from engine.spec.sequence import (
    BranchStep,
    EmailStep,
    EndStep,
    GotoStep,
    SequenceSpec,
    SplitStep,
    WaitStep,
    WaitUntil,
)


class SequenceLoopError(RuntimeError):
    """A sequence ran too many steps without waiting (validation should have caught it)."""


@dataclass(frozen=True)
class Advance:
    """The result of one ``advance``: new state, emails to write, what happens next, and
    the split variants drawn for the first time (to record for the reports)."""

    state: EnrollmentState
    emails: tuple[SendEmail, ...]
    outcome: WakeAt | Exit
    trace: tuple[TraceEntry, ...]
    assignments: tuple[AssignVariant, ...] = ()

    @property
    def exited(self) -> bool:
        return isinstance(self.outcome, Exit)


def check_exit(
    spec: SequenceSpec,
    state: EnrollmentState,
    prospect: Mapping[str, Any],
    events: Sequence[EventFact],
    now: datetime,
) -> str | None:
    """Why the sequence's ``exit_when`` holds now, or None. Exits win over any step."""
    if spec.exit_when is None:
        return None
    facts = Facts(prospect, events, now, window_start=state.enrolled_at, step_log=state.step_log)
    return explain(spec.exit_when, facts)


def advance(
    spec: SequenceSpec,
    state: EnrollmentState,
    prospect: Mapping[str, Any],
    events: Sequence[EventFact],
    now: datetime,
    unsent: Collection[str] = (),
    *,
    trace: bool = True,
) -> Advance:
    """Run the enrollment forward to its next wait or its end.

    Exit conditions are checked first, so a reply that arrived a second before an email
    step stops that email. Every email step reached is returned; none is ever skipped.

    A wait that follows an email counts from when that email is *sent*, not decided (a
    send window or a retry can hold it for days): ``unsent`` names this enrollment's email
    steps still in the outbox, and a wait after one of them does not run out; it is
    looked at again a whole wait later, and ``restart_wait`` moves it to the sending time
    once the email goes out.

    With ``trace=False`` the run decides exactly the same but tells no story: the
    ``Advance``'s trace is empty and a wait's ``WakeAt.reason`` is blank (an exit's reason
    is kept: it is written with the enrollment). The tick, which writes the decisions and
    never shows them, spends a third of a step's time on those sentences otherwise
    (a ``strftime`` per wait, a condition described per wait that ends); simulations and
    timelines keep the default.
    """
    run = _Run(spec, state, prospect, events, now, frozenset(unsent), trace)
    return run.go()


def restart_wait(
    spec: SequenceSpec, state: EnrollmentState, email_step: str, sent_at: datetime
) -> tuple[EnrollmentState, datetime] | None:
    """The enrollment's wait restarted at ``sent_at``, the moment the email of step
    ``email_step`` went out, and when it now ends; None if it is not waiting after that
    email (it moved on, or the wait follows another step) or the wait began later."""
    started = state.wait_started_at
    if started is None or state.wait_after != email_step or sent_at <= started:
        return None
    if not 0 <= state.cursor < len(spec.steps):
        return None
    step = spec.steps[state.cursor]
    if not isinstance(step, WaitStep):
        return None
    length = step.wait.up_to if isinstance(step.wait, WaitUntil) else step.wait
    return replace(state, wait_started_at=sent_at), sent_at + length


# id(spec) -> (spec, its step ids): specs are immutable and cached per version, and the
# ids are asked for on every advance. The entry keeps the spec alive, so its id is not
# reused while the entry exists.
_STEP_IDS: dict[int, tuple[SequenceSpec, list[str]]] = {}
_STEP_IDS_LIMIT = 4096


def _step_ids(spec: SequenceSpec) -> list[str]:
    entry = _STEP_IDS.get(id(spec))
    if entry is not None and entry[0] is spec:
        return entry[1]
    if len(_STEP_IDS) >= _STEP_IDS_LIMIT:
        _STEP_IDS.clear()
    ids = spec.step_ids()
    _STEP_IDS[id(spec)] = (spec, ids)
    return ids


class _Run:
    """One advance's mutable scratchpad; the public surface stays a pure function."""

    def __init__(
        self,
        spec: SequenceSpec,
        state: EnrollmentState,
        prospect: Mapping[str, Any],
        events: Sequence[EventFact],
        now: datetime,
        unsent: frozenset[str] = frozenset(),
        tracing: bool = True,
    ) -> None:
        self.spec, self.prospect, self.events, self.now = spec, prospect, events, now
        self.unsent = unsent
        self.tracing = tracing
        self.ids = _step_ids(spec)
        self.cursor = state.cursor
        self.visits = dict(state.visits)
        self.step_log = dict(state.step_log)
        self.wait_started_at = state.wait_started_at
        self.wait_after = state.wait_after
        self.enrolled_at = state.enrolled_at
        self.variants = dict(state.variants)
        self.assignments: list[AssignVariant] = []
        self.emails: list[SendEmail] = []
        self.trace: list[TraceEntry] = []

    def state(self) -> EnrollmentState:
        return EnrollmentState(
            enrolled_at=self.enrolled_at,
            cursor=self.cursor,
            visits=self.visits,
            step_log=self.step_log,
            wait_started_at=self.wait_started_at,
            variants=self.variants,
            wait_after=self.wait_after,
        )

    def facts(self, window_start: datetime | None) -> Facts:
        return Facts(self.prospect, self.events, self.now, window_start, self.step_log)

    def finish(self, outcome: WakeAt | Exit) -> Advance:
        return Advance(
            self.state(), tuple(self.emails), outcome, tuple(self.trace), tuple(self.assignments)
        )

    def note(self, step_id: str | None, kind: str, detail: str) -> None:
        """A line of the story (callers whose detail costs to build check ``tracing``)."""
        if self.tracing:
            self.trace.append(TraceEntry(self.now, step_id, kind, detail))

    def exit(self, kind: ExitKind, reason: str, step_id: str | None = None) -> Advance:
        self.note(step_id, "exit" if kind is ExitKind.EXITED else "end", reason)
        self.wait_started_at = None
        self.wait_after = None
        return self.finish(Exit(kind, reason))

    def go(self) -> Advance:
        # ``check_exit`` on the run's own state, without building an EnrollmentState.
        exit_when = self.spec.exit_when
        reason = None if exit_when is None else explain(exit_when, self.facts(self.enrolled_at))
        if reason is not None:
            return self.exit(ExitKind.EXITED, f"exit condition: {reason}")
        if self.now < self.enrolled_at:  # scheduled to start later (back from sales)
            return self.finish(WakeAt(self.enrolled_at, "not started yet"))
        # Without a wait, a valid sequence visits each step at most once per advance.
        budget = 2 * len(self.spec.steps) + 2
        while budget > 0:
            budget -= 1
            if self.cursor >= len(self.spec.steps):
                return self.exit(ExitKind.COMPLETED, "completed")
            outcome = self.step(self.spec.steps[self.cursor], self.ids[self.cursor])
            if outcome is not None:
                return outcome
        raise SequenceLoopError(
            f"sequence {self.spec.key!r} ran {2 * len(self.spec.steps) + 2} steps without a wait"
        )

    def enter(self, step_id: str) -> None:
        self.visits[step_id] = self.visits.get(step_id, 0) + 1
        self.step_log[step_id] = self.now

    def jump(self, target: str) -> None:
        self.cursor = self.ids.index(target)

    def step(self, step: Any, step_id: str) -> Advance | None:
        """Execute one step; return an Advance when the run must stop here."""
        if isinstance(step, WaitStep):
            return self.wait(step, step_id)
        self.enter(step_id)
        if isinstance(step, EmailStep):
            self.emails.append(
                SendEmail(
                    step_id,
                    step.email,
                    step.subject,
                    self.visits[step_id],
                    step.preheader,
                    tuple(self.variants.items()),
                )
            )
            if self.tracing:
                self.note(step_id, "email", f"send {step.email} (#{self.visits[step_id]})")
            self.cursor += 1
        elif isinstance(step, BranchStep):
            self.branch(step, step_id)
        elif isinstance(step, SplitStep):
            self.split(step, step_id)
        elif isinstance(step, GotoStep):
            if self.tracing:
                self.note(step_id, "goto", f"go to {step.goto}")
            self.jump(step.goto)
        elif isinstance(step, EndStep):
            self.cursor = len(self.spec.steps)
            reason = "completed" if step.end == "completed" else f"completed: {step.end}"
            return self.exit(ExitKind.COMPLETED, reason, step_id)
        return None

    def branch(self, step: BranchStep, step_id: str) -> None:
        facts = self.facts(self.enrolled_at)
        for arm in step.arms:
            why = explain(arm.if_, facts)
            if why is not None:
                if self.tracing:
                    self.note(step_id, "branch", f"{why} -> {arm.goto}")
                self.jump(arm.goto)
                return
        if step.otherwise is not None:
            if self.tracing:
                self.note(step_id, "branch", f"no condition held -> {step.otherwise}")
            self.jump(step.otherwise)
        else:
            self.note(step_id, "branch", "no condition held -> next step")
            self.cursor += 1

    def split(self, step: SplitStep, step_id: str) -> None:
        """Go down the prospect's variant: the one recorded, else a fresh draw (recorded).

        A recorded variant wins over the draw because the draw depends on the weights: a
        new version with other weights (a migrated enrollment) must not move a prospect
        already in the test. Only a recorded variant the version no longer has is drawn
        again.
        """
        recorded = self.variants.get(step_id)
        chosen = step.variant(recorded) if recorded is not None else None
        if chosen is not None:
            if self.tracing:
                self.note(
                    step_id,
                    "split",
                    f"variant {chosen.variant!r} (already recorded for this enrollment) "
                    f"-> {chosen.goto}",
                )
            self.jump(chosen.goto)
            return
        unit = unit_of(self.prospect)
        result = draw(self.spec.key, step_id, unit or "", step.weights())
        chosen = step.split[result.index]
        if self.tracing:
            who = f"prospect {unit}" if unit is not None else "a prospect without an id"
            again = f"; {recorded!r} is no longer a variant" if recorded is not None else ""
            self.note(
                step_id,
                "split",
                f"variant {chosen.variant!r} for {who}: {result.explain()}{again} -> {chosen.goto}",
            )
        self.variants[step_id] = chosen.variant
        self.assignments.append(AssignVariant(step_id, chosen.variant))
        self.jump(chosen.goto)

    def wait(self, step: WaitStep, step_id: str) -> Advance | None:
        if self.wait_started_at is None:
            self.enter(step_id)
            self.wait_started_at = self.now
            # Counted from the email just decided, once it is sent (``restart_wait``).
            self.wait_after = self.emails[-1].step_id if self.emails else None
        started = self.wait_started_at
        length = step.wait.up_to if isinstance(step.wait, WaitUntil) else step.wait
        held = self.wait_after is not None and self.wait_after in self.unsent
        if isinstance(step.wait, WaitUntil):
            due = started + step.wait.up_to
            # Only events after the wait began end it: one stamped with the very instant it
            # started (the event that just ended the previous wait of a goto loop) would end
            # this one at once and spin the loop into SequenceLoopError.
            during = [e for e in self.events if e.occurred_at > started]
            facts = Facts(self.prospect, during, self.now, started, self.step_log)
            why = explain(step.wait.until, facts)
            if why is not None:
                return self.resume(step_id, f"{why} happened" if self.tracing else "")
            if self.now >= due and held:
                return self.hold(step_id, length)
            if self.now >= due:
                missed = f"no {describe(step.wait.until)} within the wait" if self.tracing else ""
                return self.resume(step_id, missed)
            if not self.tracing:
                return self.park(step_id, due, "")
            return self.park(
                step_id, due, f"until {describe(step.wait.until)} or {due:%Y-%m-%d %H:%M}"
            )
        due = started + step.wait
        if self.now >= due and held:
            return self.hold(step_id, length)
        if self.now >= due:
            return self.resume(step_id, "wait over")
        return self.park(step_id, due, f"wait until {due:%Y-%m-%d %H:%M}" if self.tracing else "")

    def park(self, step_id: str, due: datetime, reason: str) -> Advance:
        """Stop at the wait until ``due`` (``reason`` is blank when not tracing)."""
        if self.tracing and (
            not self.trace or self.trace[-1].kind != "wait" or self.trace[-1].step_id != step_id
        ):
            self.note(step_id, "wait", reason)
        return self.finish(WakeAt(due, reason))

    def hold(self, step_id: str, length: Any) -> Advance:
        """The email this wait follows is still in the outbox: the wait has not begun.
        Look again a whole wait from now (sending restarts it sooner, ``restart_wait``)."""
        reason = f"'{self.wait_after}' not sent yet: the wait starts then" if self.tracing else ""
        return self.park(step_id, self.now + length, reason)

    def resume(self, step_id: str, reason: str) -> None:
        self.note(step_id, "waited", reason)
        self.wait_started_at = None
        self.wait_after = None
        self.cursor += 1
        return None


def start_state(now: datetime) -> EnrollmentState:
    """A fresh enrollment's state: at the first step, nothing run yet."""
    return EnrollmentState(enrolled_at=now)


def with_cursor(state: EnrollmentState, cursor: int) -> EnrollmentState:
    return replace(state, cursor=cursor, wait_started_at=None, wait_after=None)
