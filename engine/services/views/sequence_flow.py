"""The flow diagram of a sequence, laid out on the server from its spec.

Nothing is positioned by hand, so there is no layout to lose: steps stand in a column in
the order written (the order the engine runs them), each a card whose height follows
from its content, and every jump (a goto, a branch arm, a split variant) is an arc in a
gutter on the left, from the line that jumps to the step it lands on. Lanes are given
greedily so arcs that overlap in height never share one. The template draws the cards as
HTML and the arcs as SVG from these numbers (no script, no diagram library).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.core.wording import say_condition, say_event, say_step
from engine.spec.sequence import (
    BranchArm,
    BranchStep,
    EmailStep,
    EndStep,
    GotoStep,
    SequenceSpec,
    SplitStep,
    WaitStep,
    WaitUntil,
)

__all__ = ["Edge", "Flow", "FlowStep", "Outlet", "StepCounts", "build_flow"]

HEAD = 64  # px: a card's title line and its counts
LINE = 26  # px: each further line (subject, branch arm, split variant)
GAP = 18  # px between cards
LANE = 14  # px between arc lanes
MAX_LINES = 8  # a card shows this many lines at most (more arms: "+n more")


@dataclass(frozen=True)
class StepCounts:
    """Live figures of one step, gathered over every version by step id."""

    waiting: int = 0  # active enrollments parked here now
    sent: int = 0
    human_opens: int = 0  # emails opened by a person
    machine_opens: int = 0  # emails "opened" by a privacy proxy or scanner only
    human_clicks: int = 0
    machine_clicks: int = 0
    exited: int = 0
    handed_off: int = 0
    completed: int = 0


@dataclass(frozen=True)
class Outlet:
    """One line of a card that leads somewhere: a branch arm, a split variant, a goto."""

    label: str
    target: str
    kind: str  # arm | else | variant | goto


@dataclass(frozen=True)
class FlowStep:
    index: int
    step_id: str
    kind: str  # email | wait | branch | split | goto | end
    title: str  # in plain words
    detail: str | None  # an email's subject
    outlets: tuple[Outlet, ...]
    hidden_outlets: int
    falls_through: bool  # the next card follows this one
    top: int
    height: int
    lines: int
    counts: StepCounts = StepCounts()


@dataclass(frozen=True)
class Edge:
    """An arc from ``y1`` (the jumping line) to ``y2`` (the target card's title line)."""

    source: str
    target: str
    kind: str
    label: str
    y1: int
    y2: int
    lane: int
    x: int = 0
    backwards: bool = False


@dataclass(frozen=True)
class Flow:
    steps: tuple[FlowStep, ...]
    edges: tuple[Edge, ...]
    height: int
    gutter: int  # px of the arc column
    ends: list[str] = field(default_factory=list)

    def path(self, edge: Edge) -> str:
        """The SVG path of an arc: out of the card to the left, along its lane, back in."""
        right = self.gutter - 2
        return f"M{right} {edge.y1} H{edge.x} V{edge.y2} H{right - 6}"


def build_flow(spec: SequenceSpec, counts: dict[str, StepCounts] | None = None) -> Flow:
    """Lay out ``spec``; ``counts`` (by step id) are shown on the cards."""
    ids = spec.step_ids()
    counts = counts or {}
    cards: list[FlowStep] = []
    top = 0
    for index, (step, step_id) in enumerate(zip(spec.steps, ids, strict=True)):
        kind = type(step).__name__.removesuffix("Step").lower()
        outlets = _outlets(step)
        shown = outlets[: MAX_LINES - 1] if len(outlets) > MAX_LINES else outlets
        detail = _detail(step)
        lines = min(MAX_LINES, len(shown) + (1 if detail else 0) + (len(outlets) > len(shown)))
        height = HEAD + LINE * lines
        falls = _falls_through(step) and index + 1 < len(ids)
        cards.append(
            FlowStep(
                index,
                step_id,
                kind,
                say_step(step, step_id),
                detail,
                tuple(shown),
                len(outlets) - len(shown),
                falls,
                top,
                height,
                lines,
                counts.get(step_id, StepCounts()),
            )
        )
        top += height + GAP
    edges = _edges(cards)
    lanes = max((e.lane for e in edges), default=-1) + 1
    gutter = 24 + LANE * lanes
    placed = tuple(
        Edge(
            e.source,
            e.target,
            e.kind,
            e.label,
            e.y1,
            e.y2,
            e.lane,
            gutter - 16 - LANE * e.lane,
            e.y2 < e.y1,
        )
        for e in edges
    )
    return Flow(tuple(cards), placed, max(top - GAP, 0), gutter)


def _detail(step: object) -> str | None:
    """The card's second line: an email's subject, what ends a wait early."""
    if isinstance(step, EmailStep):
        return f"Subject: {step.subject}"
    if isinstance(step, WaitStep) and isinstance(step.wait, WaitUntil):
        return f"…or until {say_event(step.wait.until)}"
    return None


def _outlets(step: object) -> list[Outlet]:
    if isinstance(step, BranchStep):
        out = [
            Outlet(f"If {say_condition(arm.if_)}", arm.goto, "arm")
            for arm in step.branch
            if isinstance(arm, BranchArm)
        ]
        if step.otherwise is not None:
            out.append(Outlet("Otherwise", step.otherwise, "else"))
        return out
    if isinstance(step, SplitStep):
        total = step.total_weight
        return [
            Outlet(f"{v.variant}: {_share(v.weight, total)}", v.goto, "variant") for v in step.split
        ]
    if isinstance(step, GotoStep):
        return [Outlet("Then", step.goto, "goto")]
    return []


def _share(weight: int, total: int) -> str:
    share = 100 * weight / total
    return f"{share:.0f}%" if share.is_integer() or share >= 10 else f"{share:.1f}%"


def _falls_through(step: object) -> bool:
    if isinstance(step, GotoStep | SplitStep | EndStep):
        return False
    if isinstance(step, BranchStep):
        return step.otherwise is None  # no arm held and no else: on to the next step
    return isinstance(step, EmailStep | WaitStep | BranchStep)


def _edges(cards: list[FlowStep]) -> list[Edge]:
    """One arc per outlet, each in the lowest lane free over its height."""
    at = {card.step_id: card for card in cards}
    raw: list[Edge] = []
    for card in cards:
        first_line = HEAD + (LINE if card.detail else 0)
        for i, outlet in enumerate(card.outlets):
            target = at.get(outlet.target)
            if target is None:
                continue
            y1 = card.top + first_line + LINE * i + LINE // 2 - 4
            y2 = target.top + 22
            raw.append(Edge(card.step_id, outlet.target, outlet.kind, outlet.label, y1, y2, 0))
    raw.sort(key=lambda e: abs(e.y2 - e.y1))
    taken: list[list[tuple[int, int]]] = []
    placed: list[Edge] = []
    for edge in raw:
        low, high = sorted((edge.y1, edge.y2))
        lane = 0
        while lane < len(taken) and any(low <= b + 6 and a - 6 <= high for a, b in taken[lane]):
            lane += 1
        if lane == len(taken):
            taken.append([])
        taken[lane].append((low, high))
        placed.append(Edge(edge.source, edge.target, edge.kind, edge.label, edge.y1, edge.y2, lane))
    return placed
