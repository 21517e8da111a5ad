"""Rendering reviews and statistics as CSV and as a printable HTML page with inline SVG charts.

Pure string building (no I/O); every value is HTML-escaped. JSON output is the dataclasses
themselves, encoded by ``hub.console.print_json``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import datetime
from html import escape

from hub.ledger.projections.review import Direction, Durations, Review
from hub.ledger.projections.stats import Statistics

__all__ = ["bar_chart_svg", "review_csv", "review_html", "stats_csv"]

_STATES = (
    "submitted",
    "acknowledged",
    "supplement_requested",
    "in_execution",
    "postponed",
    "refusal_consultation",
    "executed",
    "refused",
    "withdrawn",
    "closed",
)


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d")
    return str(value)


def _csv(rows: Sequence[Sequence[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in rows:
        writer.writerow(["" if v is None else _fmt(v) for v in row])
    return out.getvalue()


def review_csv(review: Review) -> str:
    """One row per direction and measure: long form, easy to pivot in a spreadsheet."""
    rows: list[list[object]] = [["direction", "measure", "key", "value"]]
    for d in review.directions:
        name = f"{d.requesting}->{d.requested}"
        rows.append([name, "requests", "", d.requests])
        rows.extend([name, "state", s, n] for s, n in d.by_state.items())
        for label, measure in (("acknowledge", d.to_acknowledge), ("execute", d.to_execute)):
            rows.append([name, f"days_to_{label}", "count", measure.count])
            rows.append([name, f"days_to_{label}", "median", measure.median_days])
            rows.append([name, f"days_to_{label}", "p90", measure.p90_days])
        rows.extend([name, "overdue", c.case_id, c.deadline] for c in d.overdue)
        rows.extend(
            [name, "refusal", r.case_id, "consulted" if r.consulted_first else "not consulted"]
            for r in d.refusals
        )
        rows.extend(
            [name, "pending_over_90_days", c.case_id, c.age_days] for c in d.pending_over_90_days
        )
        rows.extend(
            [name, "consultation", c.consultation_id, " ".join(c.led_to) or "no request"]
            for c in d.consultations
        )
    return _csv(rows)


def stats_csv(stats: Statistics) -> str:
    header = [
        stats.by,
        "requests",
        "executed",
        "refused",
        "withdrawn",
        "pending",
        "median_days_to_acknowledge",
        "median_days_to_outcome",
    ]
    return _csv(
        [
            header,
            *[
                [
                    r.group,
                    r.requests,
                    r.executed,
                    r.refused,
                    r.withdrawn,
                    r.pending,
                    r.median_days_to_acknowledge,
                    r.median_days_to_outcome,
                ]
                for r in stats.rows
            ],
        ]
    )


def bar_chart_svg(
    title: str, series: Sequence[tuple[str, Sequence[int]]], labels: Sequence[str]
) -> str:
    """Grouped horizontal bars: one group per label, one bar per series (inline SVG)."""
    colours = ("#1f5f8b", "#c8702a", "#5b8c3a", "#8b1f5f")
    bar, gap, left, width = 12, 10, 170, 360
    top = 30
    peak = max([1, *(v for _, values in series for v in values)])
    height = top + len(labels) * (bar * len(series) + gap) + 30
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 60}" height="{height}" '
        f'role="img" aria-label="{escape(title)}">',
        f'<text x="0" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
    ]
    y = top
    for i, label in enumerate(labels):
        parts.append(f'<text x="0" y="{y + bar}" font-size="11">{escape(label)}</text>')
        for j, (_, values) in enumerate(series):
            value = values[i]
            w = round(width * value / peak)
            parts.append(
                f'<rect x="{left}" y="{y}" width="{w}" height="{bar - 2}" '
                f'fill="{colours[j % len(colours)]}"><title>{value}</title></rect>'
            )
            parts.append(
                f'<text x="{left + w + 4}" y="{y + bar - 3}" font-size="10">{value}</text>'
            )
            y += bar
        y += gap
    for j, (name, _) in enumerate(series):
        x = left + j * 170
        parts.append(
            f'<rect x="{x}" y="{y + 4}" width="10" height="10" fill="{colours[j % len(colours)]}"/>'
        )
        parts.append(f'<text x="{x + 14}" y="{y + 13}" font-size="11">{escape(name)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    if not rows:
        return "<p class='none'>none</p>"
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(_fmt(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _durations(label: str, d: Durations) -> list[object]:
    return [label, d.count, d.median_days, d.p90_days]


def _direction_html(d: Direction) -> str:
    return "\n".join(
        [
            f"<h2>{escape(d.requesting)} &rarr; {escape(d.requested)}: "
            f"{d.requests} request(s)</h2>",
            _table(("state", "requests"), list(d.by_state.items())),
            _table(
                ("days to", "cases", "median", "p90"),
                [_durations("acknowledge", d.to_acknowledge), _durations("execute", d.to_execute)],
            ),
            "<h3>Overdue</h3>",
            _table(
                ("case", "kind", "state", "held by", "deadline"),
                [(c.case_id, c.kind, c.state, c.holder, c.deadline) for c in d.overdue],
            ),
            "<h3>Refusals (UNTOC art. 18(26): consultation before refusal)</h3>",
            _table(
                ("case", "refused", "consulted first"),
                [
                    (r.case_id, r.refused_at, "yes" if r.consulted_first else "NO")
                    for r in d.refusals
                ],
            ),
            "<h3>Pending for more than 90 days</h3>",
            _table(
                ("case", "state", "held by", "opened", "age (days)"),
                [
                    (c.case_id, c.state, c.holder, c.opened, c.age_days)
                    for c in d.pending_over_90_days
                ],
            ),
            "<h3>Consultations and the requests they led to</h3>",
            _table(
                ("consultation", "opened", "state", "led to"),
                [
                    (c.consultation_id, c.opened, c.state, ", ".join(c.led_to) or "-")
                    for c in d.consultations
                ],
            ),
        ]
    )


def review_html(review: Review) -> str:
    """A printable bilateral review page (rec. 11) with a state chart for both directions."""
    first, second = review.directions
    states = [s for s in _STATES if s in first.by_state or s in second.by_state] or ["submitted"]
    chart = bar_chart_svg(
        "Requests by state, both directions",
        [
            (f"{first.requesting} → {first.requested}", [first.by_state.get(s, 0) for s in states]),
            (
                f"{second.requesting} → {second.requested}",
                [second.by_state.get(s, 0) for s in states],
            ),
        ],
        states,
    )
    period = f"{_fmt(review.since)} to {_fmt(review.until)}"
    pair = f"{escape(review.pair[0])} and {escape(review.pair[1])}"
    generated = escape(review.generated_at.isoformat(timespec="minutes"))
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Bilateral case review: {pair}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1em; }}
th, td {{ border: 1px solid #999; padding: 0.25em 0.6em; text-align: left; font-size: 0.9em; }}
th {{ background: #eee; }}
.none {{ color: #777; font-style: italic; }}
@media print {{ h2 {{ page-break-before: auto; }} }}
</style>
</head>
<body>
<h1>Bilateral case review: {pair}</h1>
<p>Resolution 7/4, recommendation 11: regular consultation on pending cases.
Cases opened in the period {escape(period)}; generated {generated}.</p>
<figure>
{chart}
</figure>
{_direction_html(first)}
{_direction_html(second)}
</body>
</html>
"""
