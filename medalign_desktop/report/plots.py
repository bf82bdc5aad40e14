"""Inline SVG line plots for the comparison report: no plotting library, no files, prints crisply.

One plot = one series of values (0..1) over the versions in lineage order, each point labelled with its
value, with optional 95 % interval bars. Every text is escaped; the caller passes plain strings.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT = 680, 280
LEFT, RIGHT, TOP, BOTTOM = 48, 56, 30, 64  # room on the right for the last point's value label
COLOUR = "#1f5f99"


def percent(value: float | None, digits: int = 1) -> str:
    """A proportion as the report writes it: ``0.6667 -> '66.7 %'``; None -> an em dash."""
    return "—" if value is None else f"{100 * value:.{digits}f} %"


def _x(index: int, count: int) -> float:
    span = WIDTH - LEFT - RIGHT
    return LEFT + span / 2 if count == 1 else LEFT + span * index / (count - 1)


def _y(value: float) -> float:
    return TOP + (HEIGHT - TOP - BOTTOM) * (1 - min(max(value, 0.0), 1.0))


def _short(label: str, limit: int = 18) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _grid() -> list[str]:
    parts = []
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = _y(tick)
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#ddd" stroke-width="1"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" fill="#555">'
            f"{int(tick * 100)} %</text>"
        )
    return parts


def _x_labels(labels: Sequence[str]) -> list[str]:
    parts = []
    for index, label in enumerate(labels):
        x = _x(index, len(labels))
        y = HEIGHT - BOTTOM + 16
        parts.append(
            f'<text x="{x:.1f}" y="{y}" font-size="11" fill="#333" text-anchor="end" '
            f'transform="rotate(-30 {x:.1f} {y})"><title>{escape(label)}</title>{escape(_short(label))}</text>'
        )
    return parts


def line_plot(
    title: str,
    labels: Sequence[str],
    values: Sequence[float | None],
    *,
    intervals: Sequence[tuple[float, float] | None] | None = None,
) -> str:
    """An ``<svg>`` element: the values (proportions) per label, joined where consecutive, labelled."""
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<text x="{LEFT}" y="18" font-size="13" font-weight="bold" fill="#222">{escape(title)}</text>',
        *_grid(),
        *_x_labels(labels),
    ]
    points = [(_x(i, len(labels)), v) for i, v in enumerate(values) if v is not None]
    if len(points) > 1:
        path = " ".join(f"{x:.1f},{_y(v):.1f}" for x, v in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{COLOUR}" stroke-width="2"/>')
    for index, value in enumerate(values):
        if value is None:
            continue
        x = _x(index, len(labels))
        interval = intervals[index] if intervals is not None else None
        if interval is not None:
            low, high = interval
            parts.append(
                f'<line x1="{x:.1f}" y1="{_y(low):.1f}" x2="{x:.1f}" y2="{_y(high):.1f}" '
                f'stroke="{COLOUR}" stroke-width="1" opacity="0.6"/>'
            )
        parts.append(f'<circle cx="{x:.1f}" cy="{_y(value):.1f}" r="4" fill="{COLOUR}"/>')
        parts.append(
            f'<text x="{x + 6:.1f}" y="{_y(value) - 6:.1f}" font-size="11" fill="#222">{percent(value)}</text>'
        )
    if not points:
        parts.append(
            f'<text x="{WIDTH / 2:.0f}" y="{HEIGHT / 2:.0f}" text-anchor="middle" font-size="12" fill="#777">'
            "No data yet</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
