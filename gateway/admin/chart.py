"""The 24-hour chart of the admin page, drawn as inline SVG on the server: no script, no CDN."""

from __future__ import annotations

from html import escape
from typing import Any

WIDTH, HEIGHT, PAD = 720, 220, 36


def _points(values: list[float], top: float) -> str:
    step = (WIDTH - 2 * PAD) / max(len(values) - 1, 1)
    scale = (HEIGHT - 2 * PAD) / (top or 1)
    return " ".join(
        f"{PAD + i * step:.1f},{HEIGHT - PAD - v * scale:.1f}" for i, v in enumerate(values)
    )


def activity_svg(buckets: list[dict[str, Any]], labels: dict[str, str]) -> str:
    """Deliveries per hour (bars: succeeded, failed) and sync lag (line, own scale)."""
    if not buckets:
        return ""
    succeeded = [b["succeeded"] for b in buckets]
    failed = [b["failed"] for b in buckets]
    lag = [b["lag_seconds"] / 60 for b in buckets]
    top = max(max(s + f for s, f in zip(succeeded, failed, strict=True)), 1)
    lag_top = max(max(lag), 1.0)
    bar = (WIDTH - 2 * PAD) / len(buckets)
    scale = (HEIGHT - 2 * PAD) / top
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="{escape(labels["title"])}" class="chart">',
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" '
        'stroke="#999"/>',
    ]
    for i, (ok, bad) in enumerate(zip(succeeded, failed, strict=True)):
        x = PAD + i * bar + 1
        ok_h, bad_h = ok * scale, bad * scale
        parts.append(
            f'<rect x="{x:.1f}" y="{HEIGHT - PAD - ok_h:.1f}" width="{bar - 2:.1f}" '
            f'height="{ok_h:.1f}" fill="#2e7d32"/>'
        )
        parts.append(
            f'<rect x="{x:.1f}" y="{HEIGHT - PAD - ok_h - bad_h:.1f}" width="{bar - 2:.1f}" '
            f'height="{bad_h:.1f}" fill="#c62828"/>'
        )
    parts.append(
        f'<polyline points="{_points(lag, lag_top)}" fill="none" stroke="#0b5cad" '
        'stroke-width="2"/>'
    )
    parts.append(
        f'<text x="{PAD}" y="16" font-size="12">{escape(labels["deliveries"])}: max {top}/h</text>'
    )
    parts.append(
        f'<text x="{WIDTH - PAD}" y="16" font-size="12" text-anchor="end" fill="#0b5cad">'
        f"{escape(labels['lag'])}: max {lag_top:.0f} min</text>"
    )
    first, last = buckets[0]["hour"][11:16], buckets[-1]["hour"][11:16]
    parts.append(f'<text x="{PAD}" y="{HEIGHT - 10}" font-size="11">{first} UTC</text>')
    parts.append(
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - 10}" font-size="11" text-anchor="end">'
        f"{last} UTC</text>"
    )
    parts.append("</svg>")
    return "".join(parts)
