"""Small server-rendered SVG pictures: per-day bars, sparklines and a story timeline.

Plain strings, no chart library: each picture is a handful of shapes, scales with its container
(``viewBox`` and ``width: 100%``) and carries a ``<title>`` so a screen reader gets the numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from html import escape


def day_bars(days: Sequence[tuple[date, int]], label: str, width: int = 600, height: int = 90) -> str:
    """One bar per day (matches per day over the backtest window), with the scale written in."""
    n = max(len(days), 1)
    step = width / n
    top = max((c for _, c in days), default=0) or 1
    base = height - 14
    bars = []
    for i, (d, c) in enumerate(days):
        h = round((base - 14) * c / top)
        bars.append(f'<rect x="{i * step + 1:.1f}" y="{base - h}" width="{max(step - 2, 1):.1f}" height="{h}" '
                    f'class="bar"><title>{d.isoformat()}: {c}</title></rect>')
    total = sum(c for _, c in days)
    first = days[0][0].strftime("%d %b") if days else ""
    last = days[-1][0].strftime("%d %b") if days else ""
    return (f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}: {total} in '
            f'{len(days)} days, at most {top if total else 0} a day">'
            f'<title>{escape(label)}</title>{"".join(bars)}'
            f'<line x1="0" y1="{base}" x2="{width}" y2="{base}" class="axis"/>'
            f'<text x="0" y="{height - 2}" class="tick">{first}</text>'
            f'<text x="{width}" y="{height - 2}" text-anchor="end" class="tick">{last}</text>'
            f'<text x="0" y="10" class="tick">max {top if total else 0}/day</text></svg>')


def sparkline(values: Sequence[int], label: str, width: int = 120, height: int = 24) -> str:
    """A line of counts per day, for tables of sources."""
    if not values:
        return ""
    top = max(values) or 1
    step = width / max(len(values) - 1, 1)
    pts = " ".join(f"{i * step:.1f},{height - 2 - (height - 4) * v / top:.1f}" for i, v in enumerate(values))
    return (f'<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
            f'aria-label="{escape(label)}: {sum(values)} in {len(values)} days, at most {max(values)} a day">'
            f'<polyline points="{pts}" class="line"/></svg>')


def timeline(points: Sequence[tuple[datetime, str]], label: str, width: int = 300, height: int = 28) -> str:
    """Dots on a time axis, one per article of a story (outlet in the tooltip)."""
    if not points:
        return ""
    first, last = min(p[0] for p in points), max(p[0] for p in points)
    t0, span = first.timestamp(), (last.timestamp() - first.timestamp()) or 1.0
    dots = []
    for when, who in points:
        x = 6 + (width - 12) * (when.timestamp() - t0) / span
        dots.append(f'<circle cx="{x:.1f}" cy="12" r="5" class="dot"><title>{escape(who)}, '
                    f'{when:%d %b %H:%M}</title></circle>')
    return (f'<svg class="timeline" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}">'
            f'<line x1="6" y1="12" x2="{width - 6}" y2="12" class="axis"/>{"".join(dots)}'
            f'<text x="0" y="{height - 1}" class="tick">{first:%d %b %H:%M}</text>'
            f'<text x="{width}" y="{height - 1}" text-anchor="end" class="tick">'
            f'{last:%d %b %H:%M}</text></svg>')
