"""The evaluation report: a Markdown page and an SVG chart of the answer/decline trade-off.

The chart shows, as the answer threshold moves, the share of answerable questions answered correctly,
answered wrongly, and declined, and (with no-answer questions) the share of those declined. A clinic
picks its threshold by looking at it. No plotting library: the SVG is written directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from pathlib import Path

WIDTH, HEIGHT = 640, 360
LEFT, RIGHT, TOP, BOTTOM = 56, 170, 24, 48
SERIES = (
    ("answered_correct", "answered correctly", "#1b7f3b"),
    ("answered_wrong", "answered wrongly", "#c0392b"),
    ("declined_answerable", "declined (answerable)", "#7f8c8d"),
    ("declined_noanswer", "declined (no-answer questions)", "#2c5aa0"),
)


def _x(threshold: float) -> float:
    return LEFT + threshold * (WIDTH - LEFT - RIGHT)


def _y(rate: float) -> float:
    return TOP + (1 - rate) * (HEIGHT - TOP - BOTTOM)


def tradeoff_svg(rows: Sequence[dict[str, float]], threshold: float) -> str:
    """Lines of each rate against the threshold (0..1), the configured threshold marked."""
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="11">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
    ]
    for tick in range(0, 11, 2):
        value = tick / 10
        parts.append(
            f'<line x1="{LEFT}" x2="{_x(1)}" y1="{_y(value):.1f}" y2="{_y(value):.1f}" stroke="#e5e5e5"/>'
            f'<text x="{LEFT - 6}" y="{_y(value) + 4:.1f}" text-anchor="end">{value:.0%}</text>'
            f'<text x="{_x(value):.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">{value:.1f}</text>'
        )
    parts.append(
        f'<text x="{(LEFT + _x(1)) / 2:.1f}" y="{HEIGHT - 10}" text-anchor="middle">'
        "answer threshold (minimum confidence)</text>"
    )
    marker = _x(threshold)
    parts.append(
        f'<line x1="{marker:.1f}" x2="{marker:.1f}" y1="{TOP}" y2="{_y(0):.1f}" stroke="#333" stroke-dasharray="4 3"/>'
        f'<text x="{marker + 4:.1f}" y="{TOP + 10}">configured {threshold:g}</text>'
    )
    legend_y = TOP + 8
    for key, label, colour in SERIES:
        points = [(row["threshold"], row[key]) for row in rows if key in row]
        if not points:
            continue
        path = " ".join(f"{_x(t):.1f},{_y(v):.1f}" for t, v in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        parts.append(
            f'<rect x="{_x(1) + 12:.1f}" y="{legend_y - 8}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{_x(1) + 26:.1f}" y="{legend_y + 1}">{escape(label)}</text>'
        )
        legend_y += 18
    parts.append("</svg>")
    return "\n".join(parts)


def write_report(
    folder: Path,
    *,
    title: str,
    description: str,
    metrics: dict[str, float],
    rows: Sequence[dict[str, float]],
    threshold: float,
) -> Path:
    """Write ``report.md`` and ``tradeoff.svg`` into ``folder``; returns the Markdown file."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tradeoff.svg").write_text(tradeoff_svg(rows, threshold), encoding="utf-8")
    keys = [key for key, _, _ in SERIES if rows and key in rows[0]]
    table = ["| threshold | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for row in rows:
        if round(row["threshold"] * 20) == row["threshold"] * 20:  # every 0.05
            table.append(f"| {row['threshold']:.2f} | " + " | ".join(f"{row[key]:.3f}" for key in keys) + " |")
    lines = [
        f"# {title}",
        "",
        description,
        "",
        "## At the configured threshold",
        "",
        "| metric | value |",
        "|---|---|",
        *[f"| {key} | {value:.4f} |" for key, value in metrics.items()],
        "",
        "## The trade-off",
        "",
        "![answered / declined as the threshold moves](tradeoff.svg)",
        "",
        "Raising the threshold declines more: fewer wrong answers, but also fewer right ones.",
        "",
        *table,
        "",
    ]
    path = folder / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
