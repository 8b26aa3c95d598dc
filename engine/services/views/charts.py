"""Chart geometry for server-rendered SVG: numbers in, coordinates out.

The page's CSP forbids inline styles and scripts, so a chart is plain SVG attributes
computed here; the template draws them and lists the same numbers in a table beneath
(the chart is for the eye, the table is the data).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

__all__ = ["LineChart", "line_chart"]

WIDTH = 400
HEIGHT = 150
LEFT, RIGHT, TOP, BOTTOM = 34, 8, 10, 22


@dataclass(frozen=True)
class LineChart:
    """A line of ``points`` (x, y in the SVG's box), a dashed threshold line at
    ``threshold_y`` and the labelled rows (when, value) for the table."""

    points: str = ""  # "x,y x,y ..." for <polyline points=...>
    dots: list[tuple[float, float]] = field(default_factory=list)
    threshold_y: float | None = None
    threshold: float = 0.0
    top_value: float = 0.0
    rows: list[tuple[str, float]] = field(default_factory=list)
    first_label: str = ""
    last_label: str = ""
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right_edge: int = WIDTH - RIGHT
    bottom: int = HEIGHT - BOTTOM
    top: int = TOP

    @property
    def empty(self) -> bool:
        return not self.rows


def _label(at: str) -> str:
    try:
        return datetime.fromisoformat(at).strftime("%d %b %H:%M")
    except ValueError:
        return at[:16]


def line_chart(values: list[tuple[str, float]], threshold: float = 0.0) -> LineChart:
    """A score path (ISO instant, value) as a step-free polyline, evenly spaced by event
    (a path's events bunch up in time; spacing by index keeps every one readable), scaled
    so that both the highest value and the threshold fit."""
    if not values:
        return LineChart(threshold=threshold)
    top = max([v for _, v in values] + [threshold, 1.0]) * 1.1
    low = min([v for _, v in values] + [0.0])
    spread = top - low or 1.0
    inner_w = WIDTH - LEFT - RIGHT
    inner_h = HEIGHT - TOP - BOTTOM
    step = inner_w / (len(values) - 1) if len(values) > 1 else 0.0

    def y_of(value: float) -> float:
        return round(TOP + inner_h * (1 - (value - low) / spread), 1)

    dots = [
        (round(LEFT + (i * step if len(values) > 1 else inner_w / 2), 1), y_of(v))
        for i, (_, v) in enumerate(values)
    ]
    return LineChart(
        points=" ".join(f"{x},{y}" for x, y in dots),
        dots=dots,
        threshold_y=y_of(threshold) if threshold else None,
        threshold=threshold,
        top_value=round(top, 1),
        rows=[(_label(at), round(v, 1)) for at, v in values],
        first_label=_label(values[0][0]),
        last_label=_label(values[-1][0]),
    )
