"""Who enters which nurture: matching, re-enrollment policy, priority, supersession.

One active nurture per prospect is a product rule (two sequences emailing one person read
as spam), so this module only ever picks one sequence; the store's partial unique index
backs the rule up against races.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from engine.core.conditions import describe, evaluate, explain, explain_failure
from engine.core.facts import EventFact, Facts
from engine.spec.durations import format_duration
from engine.spec.sequence import SequenceSpec


@dataclass(frozen=True)
class SequenceOption:
    """An active sequence's current version, as the services loaded it."""

    sequence_id: int
    version_id: int
    spec: SequenceSpec

    @property
    def priority(self) -> int:
        return self.spec.enroll.priority


@dataclass(frozen=True)
class PastEnrollment:
    """An ended enrollment, as the re-enrollment rules need it.

    ``reenroll_at`` is the re-entry sweep's stamp (``engine.services.reentry``): when the
    engine will reconsider the prospect by itself. Only the refusal's words use it (so a
    page can say what will happen, and when); callers that only decide may leave it None.
    """

    sequence_id: int
    ended_at: datetime | None
    reenroll_at: datetime | None = None


@dataclass(frozen=True)
class ActiveEnrollment:
    enrollment_id: int
    sequence_id: int
    priority: int


@dataclass(frozen=True)
class EnrollDecision:
    """Enroll in ``option``; when ``supersedes`` is set, end that active enrollment first."""

    option: SequenceOption
    reason: str
    supersedes: int | None = None


SALES_STATUSES = frozenset({"sales_ready"})
"""Statuses that mean sales has the prospect now: no nurture may take them."""


def with_sales(prospect: Mapping[str, Any], *, open_handoff: bool) -> str | None:
    """Why the prospect belongs to sales now (so no sequence may enroll them), or None.

    A prospect handed back to sales is theirs to call until they decide: an email from
    another nurture in the meantime talks over the rep, and would be enrolled in the very
    transaction that created the handoff when another sequence's rule happens to match.
    Both signs count, because they can disagree: a CRM may overwrite the status while the
    handoff is still undecided (``open_handoff``: open or overdue).
    """
    if open_handoff:
        return "they were handed to sales and the handoff is not decided yet"
    if prospect.get("status") in SALES_STATUSES:
        return f"they are {prospect.get('status')}: handed to sales, not to nurture"
    return None


@dataclass(frozen=True)
class Verdict:
    """Whether a prospect may enter a sequence now, and why (or why not), in words."""

    eligible: bool
    reason: str
    waiting: bool = False  # refused only by the re-enrollment wait: they may come back


def judge(
    option: SequenceOption,
    prospect: Mapping[str, Any],
    events: Sequence[EventFact],
    history: Sequence[PastEnrollment],
    now: datetime,
    *,
    open_handoff: bool = False,
) -> Verdict:
    """The enrollment rules for one sequence: nobody sales has (``with_sales``), its
    ``enroll.when``, its ``exit_when`` (a prospect who would leave at once does not enter)
    and its re-enrollment policy."""
    held = with_sales(prospect, open_handoff=open_handoff)
    if held is not None:
        return Verdict(False, held)
    spec = option.spec
    facts = Facts(prospect, events, now)
    why = explain(spec.enroll.when, facts)
    if why is None:
        failure = explain_failure(spec.enroll.when, facts) or describe(spec.enroll.when)
        return Verdict(False, f"the enrollment rule does not match: {failure}")
    # A prospect that would leave at once (e.g. already an opportunity) must not enter.
    if spec.exit_when is not None:
        leaving = explain(spec.exit_when, Facts(prospect, events, now, now))
        if leaving:
            return Verdict(False, f"they would leave at once: {leaving}")
    refusal = _reenrollment_refusal(option, history, now)
    return refusal if refusal is not None else Verdict(True, why)


def _reenrollment_refusal(
    option: SequenceOption, history: Sequence[PastEnrollment], now: datetime
) -> Verdict | None:
    """How the re-enrollment policy keeps the prospect out of ``option`` (a wait with an
    end is ``waiting``: they may come back), or None."""
    past = [p for p in history if p.sequence_id == option.sequence_id]
    if not past:
        return None
    if any(p.ended_at is None for p in past):
        return Verdict(False, "they are in it already")
    policy = option.spec.enroll.reenroll_after
    if policy == "never":
        return Verdict(False, "they were in it before and it never re-enrolls anyone")
    ended = [(p.ended_at, p) for p in past if p.ended_at is not None]
    last, latest = max(ended, key=lambda pair: pair[0])
    if now - last < policy:
        again = last + policy
        reason = (
            f"they left it on {last:%Y-%m-%d} and it re-enrolls after "
            f"{format_duration(policy)}: not before {again:%Y-%m-%d}."
            + _what_happens_then(latest.reenroll_at, again)
        )
        return Verdict(False, reason, waiting=True)
    return None


def _what_happens_then(stamp: datetime | None, again: datetime) -> str:
    """What the engine does once the wait is over, as the re-entry sweep will do it.

    A stamp earlier than ``again`` (the sequence's wait was lengthened since they left) is
    stamped again for ``again`` when the sweep reaches it, so the later of the two is when
    it happens. No stamp (an archived sequence restored, a wait from before the sweep
    existed): nothing will look at them by itself. An opted-out or erased prospect is never
    stamped and never reaches this sentence (the suppression or the erasure comes first).
    """
    if stamp is None:
        return (
            " Nothing reconsiders them by itself then: only an update or an event about "
            "them (or enrolling them by hand) can bring them back."
        )
    when = max(stamp, again)
    return (
        f" From {when:%Y-%m-%d %H:%M} UTC the engine reconsiders them by itself, at its "
        "next tick. They re-enter if the rule still matches, sales does not have them and "
        "no nurture that ranks as high is running (else once it ends). An opt-out, an "
        "erasure or archiving the sequence keeps them out for good."
    )


def reentry_at(policy: timedelta | str, ended_at: datetime) -> datetime | None:
    """When a prospect who left a sequence at ``ended_at`` may enter it again under its
    ``reenroll_after`` ``policy``, or None for ``never``.

    The re-entry sweep runs the enrollment rules for the prospect at that moment
    (``engine.services.reentry``): without it the wait's end went unnoticed until
    something else (a CRM update, an event) happened to touch the prospect.
    """
    if isinstance(policy, timedelta):
        return ended_at + policy
    return None


def admits(
    option: SequenceOption,
    prospect: Mapping[str, Any],
    events: Sequence[EventFact],
    history: Sequence[PastEnrollment],
    now: datetime,
) -> bool:
    """``judge(...).eligible`` for a prospect sales does not have, without the words.

    The same three tests in the same order, answered with ``evaluate``: most sequences
    refuse most prospects, and writing each refusal out (``explain_failure``) only for
    ``choose_enrollment`` to discard it cost a fifth of a CSV import. Only the page that
    shows "why not in the others" needs them, and it calls ``judge``.
    """
    spec = option.spec
    if not evaluate(spec.enroll.when, Facts(prospect, events, now)):
        return False
    if spec.exit_when is not None and evaluate(spec.exit_when, Facts(prospect, events, now, now)):
        return False
    return _reenrollment_refusal(option, history, now) is None


def eligibility(
    option: SequenceOption,
    prospect: Mapping[str, Any],
    events: Sequence[EventFact],
    history: Sequence[PastEnrollment],
    now: datetime,
    *,
    open_handoff: bool = False,
) -> str | None:
    """Why the prospect may enter ``option`` now, or None when it may not."""
    verdict = judge(option, prospect, events, history, now, open_handoff=open_handoff)
    return verdict.reason if verdict.eligible else None


def choose_enrollment(
    prospect: Mapping[str, Any],
    events: Sequence[EventFact],
    options: Sequence[SequenceOption],
    history: Sequence[PastEnrollment],
    active: ActiveEnrollment | None,
    now: datetime,
    *,
    open_handoff: bool,
) -> EnrollDecision | None:
    """Pick the sequence the prospect should be in, if that changes anything.

    Nobody sales has is enrolled (``with_sales``; ``open_handoff`` is required so that no
    caller can forget to say). The highest priority eligible sequence wins (ties: the
    lowest key, so the choice is stable). An active enrollment is only replaced by a
    strictly higher priority one: re-running this on every prospect update must not make a
    prospect flap between two.
    """
    if with_sales(prospect, open_handoff=open_handoff) is not None:
        return None
    eligible = [
        option
        for option in options
        if (active is None or option.sequence_id != active.sequence_id)
        and admits(option, prospect, events, history, now)
    ]
    if not eligible:
        return None
    option = min(eligible, key=lambda o: (-o.priority, o.spec.key))
    if active is not None and option.priority <= active.priority:
        return None
    # Only the winner's reason is put into words (it is stored on the enrollment): for an
    # admitted option ``judge``'s reason is its matched rule, explained.
    why = explain(option.spec.enroll.when, Facts(prospect, events, now)) or ""
    if active is None:
        return EnrollDecision(option, why)
    return EnrollDecision(option, why, supersedes=active.enrollment_id)


@dataclass(frozen=True)
class Standing:
    """Where a prospect stands with one sequence, for the prospect page."""

    option: SequenceOption
    # "in" | "next" (would enter now) | "outranked" | "waiting" (the re-enrollment wait)
    # | "no" | "suppressed"
    state: str
    reason: str


def review_sequences(
    prospect: Mapping[str, Any],
    events: Sequence[EventFact],
    options: Sequence[SequenceOption],
    history: Sequence[PastEnrollment],
    active: ActiveEnrollment | None,
    suppressed: str | None,
    now: datetime,
    *,
    open_handoff: bool,
) -> list[Standing]:
    """Every active sequence and why the prospect is, or is not, in it.

    The same rules ``choose_enrollment`` applies, spelled out per sequence: the rule that
    failed, the re-enrollment wait, or the higher-priority sequence that won (one nurture
    at a time). ``suppressed`` (the suppression's reason) trumps everything.
    """
    chosen = (
        None
        if suppressed
        else choose_enrollment(
            prospect, events, options, history, active, now, open_handoff=open_handoff
        )
    )
    by_id = {o.sequence_id: o for o in options}
    current = by_id.get(active.sequence_id) if active is not None else None
    out: list[Standing] = []
    for option in options:
        if current is not None and option.sequence_id == current.sequence_id:
            out.append(Standing(option, "in", "enrolled now"))
            continue
        if suppressed:
            out.append(Standing(option, "suppressed", f"the address is suppressed ({suppressed})"))
            continue
        verdict = judge(option, prospect, events, history, now, open_handoff=open_handoff)
        if not verdict.eligible:
            out.append(Standing(option, "waiting" if verdict.waiting else "no", verdict.reason))
        elif chosen is not None and chosen.option.sequence_id == option.sequence_id:
            out.append(Standing(option, "next", f"eligible ({verdict.reason}): enters next"))
        elif active is not None:
            running = f"'{current.spec.key}'" if current else "their current nurture"
            out.append(
                Standing(
                    option,
                    "outranked",
                    f"eligible ({verdict.reason}), but one nurture at a time: {running} "
                    f"(priority {active.priority}) is running and only a higher priority "
                    f"replaces it (this one has {option.priority})",
                )
            )
        else:
            winner = chosen.option if chosen else None
            out.append(Standing(option, "outranked", _outranked(option, winner, verdict)))
    return out


def _outranked(option: SequenceOption, winner: SequenceOption | None, verdict: Verdict) -> str:
    if winner is None:
        return f"eligible ({verdict.reason})"
    if winner.priority > option.priority:
        order = f"priority {winner.priority} over {option.priority}"
    else:
        order = f"same priority {option.priority}, and '{winner.spec.key}' sorts first"
    return (
        f"eligible ({verdict.reason}), but one nurture at a time: "
        f"'{winner.spec.key}' enters instead ({order})"
    )
