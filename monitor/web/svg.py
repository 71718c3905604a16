"""Small server-rendered SVG pictures: per-day bars, sparklines and a story timeline.

Plain strings, no chart library: each picture is a handful of shapes with a ``<title>`` so a
screen reader gets the numbers. The bar chart and the timeline stretch to their container's
width, so they have no ``viewBox``: a viewBox scales everything inside it, text included (at
360 px the 12 px labels of a 600-unit chart shrank to 6 px, and a non-uniform scale would
distort them). Instead their shapes are placed in percentages across and pixels down, and the
labels are ordinary text at the page's own size, anchored to the left and right edges. The
sparkline has no text and a fixed size, so its viewBox never scales anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from html import escape


def _pct(x: float) -> str:
    return f"{x:.2f}%"


def day_bars(days: Sequence[tuple[date, int]], label: str, height: int = 90) -> str:
    """One bar per day (matches per day over the backtest window), with the scale written in."""
    n = max(len(days), 1)
    slot = 100 / n
    top = max((c for _, c in days), default=0) or 1
    base = height - 16  # the axis; the dates go below it
    room = base - 16  # the tallest bar; "max N/day" goes above it
    bars = []
    for i, (d, c) in enumerate(days):
        h = round(room * c / top)
        bars.append(f'<rect x="{_pct(i * slot + slot * 0.1)}" y="{base - h}" width="{_pct(slot * 0.8)}" '
                    f'height="{h}" class="bar"><title>{d.isoformat()}: {c}</title></rect>')
    total = sum(c for _, c in days)
    first = days[0][0].strftime("%d %b") if days else ""
    last = days[-1][0].strftime("%d %b") if days else ""
    return (f'<svg class="chart" width="100%" height="{height}" role="img" aria-label="{escape(label)}: {total} in '
            f'{len(days)} days, at most {top if total else 0} a day">'
            f'<title>{escape(label)}</title>{"".join(bars)}'
            f'<line x1="0" y1="{base + 0.5}" x2="100%" y2="{base + 0.5}" class="axis"/>'
            f'<text x="0" y="{height - 3}" class="tick">{first}</text>'
            f'<text x="100%" y="{height - 3}" text-anchor="end" class="tick">{last}</text>'
            f'<text x="0" y="12" class="tick">max {top if total else 0}/day</text></svg>')


def sparkline(values: Sequence[int], label: str, width: int = 120, height: int = 24) -> str:
    """A line of counts per day, for tables of sources (fixed size: its viewBox never scales)."""
    if not values:
        return ""
    top = max(values) or 1
    step = width / max(len(values) - 1, 1)
    pts = " ".join(f"{i * step:.1f},{height - 2 - (height - 4) * v / top:.1f}" for i, v in enumerate(values))
    return (f'<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
            f'aria-label="{escape(label)}: {sum(values)} in {len(values)} days, at most {max(values)} a day">'
            f'<polyline points="{pts}" class="line"/></svg>')


def timeline(points: Sequence[tuple[datetime, str]], label: str, height: int = 34) -> str:
    """Dots on a time axis, one per article of a story (outlet in the tooltip)."""
    if not points:
        return ""
    first, last = min(p[0] for p in points), max(p[0] for p in points)
    t0, span = first.timestamp(), (last.timestamp() - first.timestamp()) or 1.0
    left, right = 2.0, 98.0  # percent: room for a dot's radius at either end
    dots = []
    for when, who in points:
        x = left + (right - left) * (when.timestamp() - t0) / span
        dots.append(f'<circle cx="{_pct(x)}" cy="12" r="5" class="dot"><title>{escape(who)}, '
                    f'{when:%d %b %H:%M}</title></circle>')
    return (f'<svg class="timeline" width="100%" height="{height}" role="img" aria-label="{escape(label)}">'
            f'<line x1="{_pct(left)}" y1="12" x2="{_pct(right)}" y2="12" class="axis"/>{"".join(dots)}'
            f'<text x="0" y="{height - 3}" class="tick">{first:%d %b %H:%M}</text>'
            f'<text x="100%" y="{height - 3}" text-anchor="end" class="tick">'
            f'{last:%d %b %H:%M}</text></svg>')
