"""Inline SVG charts for the HTML report, drawn from `harness.task.Plot` (bar, scatter, heatmap, line).

Every label is escaped; points with missing or non-numeric coordinates are skipped, never guessed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from html import escape
from typing import Any

from harness.task import Plot

WIDTH = 680
PALETTE = ("#3b6ea8", "#d0743c", "#4f9a5b", "#a8445d", "#7a5fa8", "#8c7a3b", "#3b9aa0", "#666666")
FONT = 12


def num(value: Any) -> float | None:
    """A finite float, or None for missing / non-numeric values."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def fmt(value: float) -> str:
    """Compact tick / value label."""
    if value == 0:
        return "0"
    if abs(value) >= 100 or float(value).is_integer():
        return f"{value:.0f}"
    return f"{value:.3g}"


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high]."""
    if high <= low:
        high = low + 1.0
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    ticks, value = [], start
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < high:
        ticks.append(round(value, 10))
    return ticks


def axis_ticks(values: Iterable[float | None], include_zero: bool = False) -> list[float]:
    """Ticks covering the values (optionally including 0); the axis runs from the first to the last."""
    present = [v for v in values if v is not None] + ([0.0] if include_zero else [])
    if not present:
        return [0.0, 1.0]
    return nice_ticks(min(present), max(present))


class Scale:
    """Linear map from data [low, high] to pixels [start, end]."""

    def __init__(self, low: float, high: float, start: float, end: float):
        self.low, self.high, self.start, self.end = low, high, start, end

    def __call__(self, value: float) -> float:
        span = (self.high - self.low) or 1.0
        return round(self.start + (value - self.low) / span * (self.end - self.start), 2)


def text(x: float, y: float, content: str, anchor: str = "start", cls: str = "", extra: str = "") -> str:
    klass = f' class="{cls}"' if cls else ""
    return f'<text x="{x:.2f}" y="{y:.2f}" text-anchor="{anchor}"{klass}{extra}>{escape(content)}</text>'


def line(x1: float, y1: float, x2: float, y2: float, cls: str = "") -> str:
    klass = f' class="{cls}"' if cls else ""
    return f'<line x1="{x1:.2f}" y1="{y1:.2f}" x2="{x2:.2f}" y2="{y2:.2f}"{klass}/>'


def short(label: str, limit: int) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def frame(plot: Plot, height: float, body: list[str]) -> str:
    """The <svg> element with its accessible title and visible heading."""
    title = escape(plot.title)
    return (
        f'<svg class="plot plot-{plot.kind}" role="img" '
        f'aria-label="{title}" width="{WIDTH}" height="{height:.0f}" viewBox="0 0 {WIDTH} {height:.0f}">'
        f"<title>{title}</title>" + text(WIDTH / 2, 18, plot.title, "middle", "plot-title") + "".join(body) + "</svg>"
    )


def x_axis(scale: Scale, ticks: list[float], top: float, bottom: float, label: str) -> list[str]:
    parts = [line(scale.start, bottom, scale.end, bottom, "axis")]
    for t in ticks:
        x = scale(t)
        parts += [line(x, top, x, bottom, "grid"), text(x, bottom + 14, fmt(t), "middle", "tick")]
    if label:
        parts.append(text((scale.start + scale.end) / 2, bottom + 32, label, "middle", "axis-label"))
    return parts


def y_axis(scale: Scale, ticks: list[float], left: float, right: float, label: str) -> list[str]:
    parts = [line(left, scale.start, left, scale.end, "axis")]
    for t in ticks:
        y = scale(t)
        parts += [line(left, y, right, y, "grid"), text(left - 6, y + 4, fmt(t), "end", "tick")]
    if label:
        middle = (scale.start + scale.end) / 2
        parts.append(text(14, middle, label, "middle", "axis-label", f' transform="rotate(-90 14 {middle:.2f})"'))
    return parts


def legend(colours: dict[str, str], top: float) -> list[str]:
    parts, x = [], 12.0
    for name in colours:
        parts += [
            f'<rect x="{x:.1f}" y="{top - 9:.1f}" width="10" height="10" fill="{colours[name]}"/>',
            text(x + 14, top, short(name, 30), cls="legend"),
        ]
        x += 24 + 7 * len(short(name, 30))
    return parts


def colour_map(names: Iterable[str]) -> dict[str, str]:
    ordered = list(dict.fromkeys(names))
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(ordered)}


def whisker_h(x1: float, x2: float, y: float) -> list[str]:
    return [line(x1, y, x2, y, "whisker"), line(x1, y - 4, x1, y + 4, "whisker"), line(x2, y - 4, x2, y + 4, "whisker")]


def whisker_v(x: float, y1: float, y2: float) -> list[str]:
    return [line(x, y1, x, y2, "whisker"), line(x - 4, y1, x + 4, y1, "whisker"), line(x - 4, y2, x + 4, y2, "whisker")]


def bar_svg(plot: Plot) -> str:
    """Horizontal bars from 0 with optional interval whiskers, coloured by group."""
    points = [p for p in plot.points if num(p.get("value")) is not None]
    groups = [str(p["group"]) for p in points if p.get("group") not in (None, "")]
    colours = colour_map(groups)
    top = 52 if len(colours) > 1 else 34
    row, left, right = 22, 210, WIDTH - 60
    bottom = top + row * max(len(points), 1)
    ticks = axis_ticks((num(p.get(k)) for p in points for k in ("value", "ci_low", "ci_high")), include_zero=True)
    scale = Scale(ticks[0], ticks[-1], left, right)
    body = legend(colours, 38) if len(colours) > 1 else []
    body += x_axis(scale, ticks, top, bottom, plot.x_label)
    if plot.y_label:
        body.append(text(12, top - 6, plot.y_label, cls="axis-label"))
    for i, p in enumerate(points):
        value, y = num(p["value"]), top + i * row
        assert value is not None  # points without a value were filtered out above
        x0, x1 = sorted((scale(0.0), scale(value)))
        colour = colours.get(str(p.get("group")), PALETTE[0])
        label = str(p.get("label", ""))
        body.append(
            f'<g class="bar"><title>{escape(label)}: {escape(fmt(value))}</title>'
            f'<rect x="{x0:.2f}" y="{y + 4:.2f}" width="{max(x1 - x0, 0.5):.2f}" height="{row - 8}" '
            f'fill="{colour}"/></g>'
        )
        body.append(text(left - 6, y + row / 2 + 4, short(label, 32), "end", "label"))
        lo, hi = num(p.get("ci_low")), num(p.get("ci_high"))
        if lo is not None and hi is not None:
            body += whisker_h(scale(lo), scale(hi), y + row / 2)
        body.append(
            text(scale(max(v for v in (value, hi) if v is not None)) + 6, y + row / 2 + 4, fmt(value), cls="value")
        )
    return frame(plot, bottom + 44, body)


def xy_frame(plot: Plot, xs: list[float], ys: list[float], top: float) -> tuple[Scale, Scale, list[str], float]:
    left, right, bottom = 64, WIDTH - 24, top + 300
    xticks, yticks = axis_ticks(xs), axis_ticks(ys)
    sx, sy = Scale(xticks[0], xticks[-1], left, right), Scale(yticks[0], yticks[-1], bottom, top)
    parts = x_axis(sx, xticks, top, bottom, plot.x_label)
    parts += y_axis(sy, yticks, left, right, plot.y_label)
    return sx, sy, parts, bottom + 44


def scatter_svg(plot: Plot) -> str:
    """Labelled points with optional x and y interval whiskers."""
    points = [p for p in plot.points if num(p.get("x")) is not None and num(p.get("y")) is not None]
    xs = [num(p.get(k)) for p in points for k in ("x", "x_low", "x_high")]
    ys = [num(p.get(k)) for p in points for k in ("y", "y_low", "y_high")]
    sx, sy, body, height = xy_frame(plot, [v for v in xs if v is not None], [v for v in ys if v is not None], 34)
    for i, p in enumerate(points):
        px, py = num(p["x"]), num(p["y"])
        assert px is not None and py is not None  # points without x or y were filtered out above
        x, y = sx(px), sy(py)
        colour = PALETTE[i % len(PALETTE)]
        xl, xh, yl, yh = (num(p.get(k)) for k in ("x_low", "x_high", "y_low", "y_high"))
        if xl is not None and xh is not None:
            body += whisker_h(sx(xl), sx(xh), y)
        if yl is not None and yh is not None:
            body += whisker_v(x, sy(yl), sy(yh))
        label = str(p.get("label", ""))
        body.append(
            f'<g class="point"><title>{escape(label)}: ({escape(fmt(px))}, '
            f'{escape(fmt(py))})</title><circle cx="{x:.2f}" cy="{y:.2f}" r="5" fill="{colour}"/></g>'
        )
        body.append(text(x + 8, y - 6, short(label, 24), cls="label"))
    return frame(plot, height, body)


def line_svg(plot: Plot) -> str:
    """One polyline per series, points sorted by x."""
    series: dict[str, list[tuple[float, float]]] = {}
    for p in plot.points:
        x, y = num(p.get("x")), num(p.get("y"))
        if x is not None and y is not None:
            series.setdefault(str(p.get("series", "")), []).append((x, y))
    colours = colour_map(series)
    top = 52 if len(series) > 1 else 34
    xs = [x for pts in series.values() for x, _ in pts]
    ys = [y for pts in series.values() for _, y in pts]
    sx, sy, body, height = xy_frame(plot, xs, ys, top)
    if len(series) > 1:
        body += legend(colours, 38)
    for name, pts in series.items():
        pts.sort()
        coords = " ".join(f"{sx(x):.2f},{sy(y):.2f}" for x, y in pts)
        body.append(
            f'<g class="series"><title>{escape(name)}</title>'
            f'<polyline points="{coords}" fill="none" stroke="{colours[name]}" stroke-width="2"/>'
        )
        body += [f'<circle cx="{sx(x):.2f}" cy="{sy(y):.2f}" r="3" fill="{colours[name]}"/>' for x, y in pts]
        body.append("</g>")
    return frame(plot, height, body)


def heat_colour(value: float, low: float, high: float) -> str:
    """White to dark blue."""
    t = 0.0 if high == low else (value - low) / (high - low)
    r, g, b = (round(255 + (c - 255) * t) for c in (33, 82, 140))
    return f"rgb({r},{g},{b})"


def heatmap_svg(plot: Plot) -> str:
    """Grid of (row, col) cells shaded by value, the value printed in each cell."""
    cells = {(str(p.get("row")), str(p.get("col"))): num(p.get("value")) for p in plot.points}
    rows = list(dict.fromkeys(r for r, _ in cells))
    cols = list(dict.fromkeys(c for _, c in cells))
    present = [v for v in cells.values() if v is not None]
    low, high = (min(present), max(present)) if present else (0.0, 1.0)
    left, top = 150, 64
    cell_w = max(28.0, min(80.0, (WIDTH - left - 20) / max(len(cols), 1)))
    cell_h = 26
    body = [text(left + cell_w * (j + 0.5), top - 8, short(c, 10), "middle", "tick") for j, c in enumerate(cols)]
    if plot.x_label:
        body.append(text(left + cell_w * len(cols) / 2, top - 26, plot.x_label, "middle", "axis-label"))
    if plot.y_label:
        body.append(text(12, top - 8, plot.y_label, cls="axis-label"))
    for i, r in enumerate(rows):
        y = top + i * cell_h
        body.append(text(left - 6, y + cell_h / 2 + 4, short(r, 22), "end", "label"))
        for j, c in enumerate(cols):
            value, x = cells.get((r, c)), left + j * cell_w
            fill = "#eeeeee" if value is None else heat_colour(value, low, high)
            shown = "–" if value is None else fmt(value)
            dark = value is not None and high > low and (value - low) / (high - low) > 0.55
            body.append(
                f'<g class="cell"><title>{escape(r)} × {escape(c)}: {escape(shown)}</title>'
                f'<rect x="{x:.2f}" y="{y}" width="{cell_w:.2f}" height="{cell_h}" fill="{fill}" '
                f'stroke="#ffffff"/></g>'
            )
            body.append(
                text(x + cell_w / 2, y + cell_h / 2 + 4, shown, "middle", "cell-value" + (" dark" if dark else ""))
            )
    return frame(plot, top + cell_h * max(len(rows), 1) + 16, body)


RENDERERS = {"bar": bar_svg, "scatter": scatter_svg, "line": line_svg, "heatmap": heatmap_svg}


def render_plot(plot: Plot) -> str:
    """Inline SVG of a plot; an empty plot still shows its title and says it has no data."""
    if not plot.points:
        return frame(plot, 60, [text(WIDTH / 2, 44, "no data", "middle", "label")])
    return RENDERERS[plot.kind](plot)
