"""Charts drawn on the server as SVG: readable without JavaScript, with a title and a
description for screen readers (which the page follows with a table of the same numbers),
axis labels with units, and each value's own tooltip (an SVG <title>). A line chart draws one
`circle.point` per value and a bar chart one `rect.bar` per non-zero value, so the picture can
be checked against its data."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 720, 280
LEFT, RIGHT, TOP, BOTTOM = 64, 48, 40, 56
# Distinguishable colours, also for the common kinds of colour blindness (Okabe and Ito).
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000")
TICKS = 5
# A time axis spans at least this many seconds.
SHORTEST_SPAN = 86400
_ids = itertools.count(1)


@dataclass(frozen=True)
class Series:
    name: str
    points: Sequence[tuple[datetime, float]]
    # Indexes of points to ring in red (a regression, say), with what the ring means.
    marked: frozenset[int] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Stack:
    """One category of a stacked bar chart: its value in each column."""

    name: str
    values: Sequence[int]
    colour: str | None = None


def line_chart(
    *,
    title: str,
    series: Sequence[Series],
    y_label: str,
    x_label: str,
    y_max: float | None = None,
    mark_label: str = "",
) -> SafeString:
    """Values over time, one line per series (points placed by their time)."""
    times = [t.timestamp() for s in series for t, _ in s.points]
    values = [v for s in series for _, v in s.points]
    top = y_max if y_max is not None else _nice_top(max(values, default=1.0))
    first, last = (min(times), max(times)) if times else (0.0, 0.0)
    if last - first < SHORTEST_SPAN:
        # Runs minutes apart (one run per mode) stand together, not at both ends of the axis.
        middle = (first + last) / 2
        first, last = middle - SHORTEST_SPAN / 2, middle + SHORTEST_SPAN / 2
    zone = next((t.tzinfo for s in series for t, _ in s.points), None)

    def x(moment: datetime) -> float:
        return LEFT + (moment.timestamp() - first) / (last - first) * _plot_width()

    ticks = [
        datetime.fromtimestamp(first + (last - first) * step / (TICKS - 1), tz=zone)
        for step in range(TICKS)
    ]
    parts = [
        _y_axis(top, y_label),
        _axis_title(x_label),
        _x_labels([(x(moment), f"{moment:%d %b %H:%M}") for moment in ticks]),
    ]
    for colour, each in zip(itertools.cycle(PALETTE), series, strict=False):
        coords = [(x(t), _y(v, top)) for t, v in each.points]
        if len(coords) > 1:
            parts.append(
                format_html(
                    '<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>',
                    colour,
                    " ".join(f"{cx:.1f},{cy:.1f}" for cx, cy in coords),
                )
            )
        for index, ((cx, cy), (moment, value)) in enumerate(zip(coords, each.points, strict=True)):
            marked = index in each.marked
            parts.append(
                format_html(
                    '<circle class="point{}" cx="{}" cy="{}" r="{}" fill="{}" '
                    'stroke="{}" stroke-width="{}"><title>{}, {}: {}{}'
                    "</title></circle>",
                    " marked" if marked else "",
                    _n(cx),
                    _n(cy),
                    6 if marked else 4,
                    colour,
                    "#c00" if marked else colour,
                    3 if marked else 1,
                    each.name,
                    f"{moment:%Y-%m-%d %H:%M}",
                    f"{value:.4f}",
                    f" ({mark_label})" if marked else "",
                )
            )
    legend = [(s.name, c) for s, c in zip(series, itertools.cycle(PALETTE), strict=False)]
    if mark_label and any(s.marked for s in series):
        legend.append((f"ringed: {mark_label}", "#c00"))
    return _svg(title, parts, legend)


def bar_chart(
    *,
    title: str,
    columns: Sequence[str],
    stacks: Sequence[Stack],
    y_label: str,
    x_label: str,
) -> SafeString:
    """Stacked bars: one column per label of `columns`, one colour per stack."""
    totals = [sum(s.values[i] for s in stacks) for i in range(len(columns))]
    top = _nice_top(max(totals, default=0) or 1, integers=True)
    slot = _plot_width() / max(1, len(columns))
    width = max(2.0, slot * 0.7)
    parts = [_y_axis(top, y_label, integers=True), _axis_title(x_label)]
    step = max(1, math.ceil(len(columns) / 12))
    parts.append(
        _x_labels([(LEFT + slot * (i + 0.5), label) for i, label in enumerate(columns)][::step])
    )
    colours = [s.colour or c for s, c in zip(stacks, itertools.cycle(PALETTE), strict=False)]
    for i, column in enumerate(columns):
        base = 0
        for stack, colour in zip(stacks, colours, strict=True):
            value = stack.values[i]
            if not value:
                continue
            y_top, y_bottom = _y(base + value, top), _y(base, top)
            parts.append(
                format_html(
                    '<rect class="bar" x="{}" y="{}" width="{}" height="{}" '
                    'fill="{}"><title>{}, {}: {}</title></rect>',
                    _n(LEFT + slot * i + (slot - width) / 2),
                    _n(y_top),
                    _n(width),
                    _n(y_bottom - y_top),
                    colour,
                    stack.name,
                    column,
                    value,
                )
            )
            base += value
    return _svg(title, parts, [(s.name, c) for s, c in zip(stacks, colours, strict=True)])


def _n(number: float) -> str:
    """A coordinate as SVG takes it (format_html escapes its arguments to text first)."""
    return f"{number:.1f}"


def _plot_width() -> float:
    return WIDTH - LEFT - RIGHT


def _plot_height() -> float:
    return HEIGHT - TOP - BOTTOM


def _y(value: float, top: float) -> float:
    return TOP + _plot_height() * (1 - value / top)


def _nice_top(value: float, *, integers: bool = False) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten at or above the value."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for factor in (1, 2, 2.5, 5, 10):
        if factor * power >= value:
            top = factor * power
            return max(TICKS, math.ceil(top)) if integers else top
    return 10 * power


def _y_axis(top: float, label: str, *, integers: bool = False) -> SafeString:
    ticks = []
    for step in range(TICKS + 1):
        value = top * step / TICKS
        y = _y(value, top)
        text = f"{value:.0f}" if integers and value == int(value) else f"{value:g}"
        if integers and value != int(value):
            continue
        ticks.append(
            format_html(
                '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="#ddd"/>'
                '<text x="{}" y="{}" text-anchor="end" dominant-baseline="middle">{}</text>',
                LEFT,
                WIDTH - RIGHT,
                _n(y),
                _n(y),
                LEFT - 6,
                _n(y),
                text,
            )
        )
    middle = TOP + _plot_height() / 2
    return format_html(
        '{}<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="#333"/>'
        '<text class="axis-title" transform="translate(14 {}) rotate(-90)" '
        'text-anchor="middle">{}</text>',
        mark_safe("".join(ticks)),  # noqa: S308 (each piece built by format_html)
        LEFT,
        LEFT,
        TOP,
        HEIGHT - BOTTOM,
        _n(middle),
        label,
    )


def _axis_title(label: str) -> SafeString:
    return format_html(
        '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="#333"/>'
        '<text class="axis-title" x="{}" y="{}" text-anchor="middle">{}</text>',
        LEFT,
        WIDTH - RIGHT,
        HEIGHT - BOTTOM,
        HEIGHT - BOTTOM,
        _n(LEFT + _plot_width() / 2),
        HEIGHT - 8,
        label,
    )


def _x_labels(labels: Sequence[tuple[float, str]]) -> SafeString:
    return format_html_join(
        "",
        '<text x="{}" y="{}" text-anchor="middle">{}</text>',
        ((_n(x), HEIGHT - BOTTOM + 18, text) for x, text in labels),
    )


def _svg(title: str, parts: Sequence[SafeString], legend: Sequence[tuple[str, str]]) -> SafeString:
    number = next(_ids)
    entries, x = [], LEFT
    for name, colour in legend:
        entries.append((x, colour, x + 16, name))
        x += 32 + 6 * len(name)  # about 6 pixels a character at 11 px
    keys = format_html_join(
        "",
        '<rect x="{}" y="8" width="12" height="12" fill="{}"/>'
        '<text x="{}" y="18" class="legend">{}</text>',
        entries,
    )
    return format_html(
        '<svg class="chart" viewBox="0 0 {} {}" width="{}" height="{}" role="img" '
        'aria-labelledby="chart-{}-title chart-{}-desc" xmlns="http://www.w3.org/2000/svg" '
        'font-family="sans-serif" font-size="11">'
        '<title id="chart-{}-title">{}</title>'
        '<desc id="chart-{}-desc">The table below the chart holds the same numbers.</desc>'
        "{}{}</svg>",
        WIDTH,
        HEIGHT,
        WIDTH,
        HEIGHT,
        number,
        number,
        number,
        title,
        number,
        keys,
        mark_safe("".join(parts)),  # noqa: S308 (each piece built by format_html)
    )
