"""The 24-hour chart of the admin page, drawn as inline SVG on the server: no script, no CDN."""

from __future__ import annotations

from html import escape
from typing import Any

WIDTH, HEIGHT, PAD, BOTTOM = 720, 240, 44, 52
# A dated tick every this many bars (hours), so the axis says which day each hour is.
TICK_EVERY = 6


def _points(values: list[float], top: float, bar: float) -> str:
    scale = (HEIGHT - PAD - BOTTOM) / (top or 1)
    return " ".join(
        f"{PAD + (i + 0.5) * bar:.1f},{HEIGHT - BOTTOM - v * scale:.1f}"
        for i, v in enumerate(values)
    )


def activity_svg(buckets: list[dict[str, Any]], labels: dict[str, str]) -> str:
    """Items delivered and gone dead per hour (bars) and the sync lag (line, own scale)."""
    if not buckets:
        return ""
    delivered = [b["delivered"] for b in buckets]
    dead = [b["dead"] for b in buckets]
    lag = [b["lag_seconds"] / 60 for b in buckets]
    top = max(max(d + x for d, x in zip(delivered, dead, strict=True)), 1)
    lag_top = max(max(lag), 1.0)
    bar = (WIDTH - 2 * PAD) / len(buckets)
    scale = (HEIGHT - PAD - BOTTOM) / top
    base = HEIGHT - BOTTOM
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="{escape(labels["title"])}" class="chart">',
        f'<line x1="{PAD}" y1="{base}" x2="{WIDTH - PAD}" y2="{base}" stroke="#595959"/>',
    ]
    for i, (ok, bad) in enumerate(zip(delivered, dead, strict=True)):
        x = PAD + i * bar + 1
        ok_h, bad_h = ok * scale, bad * scale
        parts.append(
            f'<rect x="{x:.1f}" y="{base - ok_h:.1f}" width="{bar - 2:.1f}" '
            f'height="{ok_h:.1f}" fill="#2e7d32"/>'
        )
        parts.append(
            f'<rect x="{x:.1f}" y="{base - ok_h - bad_h:.1f}" width="{bar - 2:.1f}" '
            f'height="{bad_h:.1f}" fill="#c62828"/>'
        )
    parts.append(
        f'<polyline points="{_points(lag, lag_top, bar)}" fill="none" stroke="#0b5cad" '
        'stroke-width="2"/>'
    )
    parts.append(
        f'<text x="{PAD}" y="16" font-size="12">{escape(labels["deliveries"])}: max {top}/h</text>'
    )
    parts.append(
        f'<text x="{WIDTH - PAD}" y="32" font-size="12" text-anchor="end" fill="#0b5cad">'
        f"{escape(labels['lag'])}: max {lag_top:.0f} min</text>"
    )
    for i, bucket in enumerate(buckets):
        if i % TICK_EVERY:
            continue
        x = PAD + i * bar
        day, hour = bucket["hour"][5:10], bucket["hour"][11:16]
        parts.append(
            f'<line x1="{x:.1f}" y1="{base}" x2="{x:.1f}" y2="{base + 6}" stroke="#595959"/>'
        )
        parts.append(
            f'<text x="{x:.1f}" y="{base + 20}" font-size="11" text-anchor="start">{hour}</text>'
            f'<text x="{x:.1f}" y="{base + 34}" font-size="11" text-anchor="start">{day}</text>'
        )
    parts.append(
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - 4}" font-size="11" text-anchor="end">UTC</text>'
    )
    parts.append("</svg>")
    return "".join(parts)
