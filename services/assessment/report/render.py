"""Rendering a quarterly or yearly report: one self-contained HTML page with SVG charts, and CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from decimal import Decimal
from html import escape

from services.assessment.domain.kpis import Kpi
from services.assessment.report.model import QuarterReport, ReportRow

BAR_WIDTH = 360
TIER_COLOURS = {"top": "#2e7d32", "middle": "#607d8b", "bottom": "#c62828"}


def _bars(items: Sequence[tuple[str, float, str]], unit: str = "") -> str:
    """A horizontal bar chart as inline SVG: (label, value, colour) per bar."""
    if not items:
        return "<p>No data.</p>"
    top = max((value for _, value, _ in items), default=0) or 1
    height = 22 * len(items) + 4
    parts = [f'<svg width="{BAR_WIDTH + 220}" height="{height}" role="img">']
    for index, (label, value, colour) in enumerate(items):
        y = 22 * index + 2
        width = max(1, int(BAR_WIDTH * value / top))
        parts.append(
            f'<text x="0" y="{y + 14}" font-size="12">{escape(label)}</text>'
            f'<rect x="110" y="{y}" width="{width}" height="18" fill="{colour}"/>'
            f'<text x="{114 + width}" y="{y + 14}" font-size="12">{value:g}{unit}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _sum_prefixed(rows: Sequence[ReportRow], prefix: str) -> dict[str, int]:
    totals: dict[str, int] = {}
    for row in rows:
        for kpi, value in row.counts.items():
            if kpi.startswith(prefix):
                totals[kpi[len(prefix) :]] = totals.get(kpi[len(prefix) :], 0) + value
    return dict(sorted(totals.items()))


def _share(counts: dict[str, int], part: Kpi, whole: Kpi) -> float:
    """`part` as a percentage of `whole` (callers skip a zero `whole`)."""
    return round(100 * counts.get(part.value, 0) / counts[whole.value], 1)


def render_html(report: QuarterReport) -> str:
    """The report page (no external assets, so it can be mailed or archived as one file)."""
    zones = [row for row in report.rows if row.level == "zone"]
    scope = f"zone {report.zone_id}" if report.zone_id else "all zones"
    sections = [
        f"<h1>Assessment {escape(report.quarter)} — {escape(report.county_id)}"
        f" ({escape(scope)})</h1>",
        f"<p>Scoring rules {escape(report.rules_version)}.</p>",
    ]
    for level in ("zone", "township", "person"):
        rows = [row for row in report.rows if row.level == level]
        sections.append(f"<h2>Ranking: {level}s</h2>")
        sections.append(
            _bars(
                [
                    (f"{row.rank}. {row.subject_id}", float(row.total), TIER_COLOURS[row.tier])
                    for row in rows
                ]
            )
        )
    forms = _sum_prefixed(zones, f"{Kpi.DECISIONS.value}.")
    sections.append("<h2>Decisions by type (four-forms distribution)</h2>")
    sections.append(_bars([(kind, float(n), "#5c6bc0") for kind, n in forms.items()]))
    sections.append("<h2>Deadline compliance: limits missed per zone</h2>")
    sections.append(
        _bars(
            [
                (row.subject_id, float(row.counts.get(Kpi.DEADLINES_BREACHED.value, 0)), "#ef6c00")
                for row in zones
            ]
        )
    )
    sections.append("<h2>Deadline compliance: share finished within the limit per zone</h2>")
    for label, done, in_time in (
        ("disposals", Kpi.CLUES_DISPOSED, Kpi.CLUES_DISPOSED_IN_TIME),
        ("investigations", Kpi.INVESTIGATIONS_FINISHED, Kpi.INVESTIGATIONS_FINISHED_IN_TIME),
    ):
        sections.append(f"<h3>{label}</h3>")
        sections.append(
            _bars(
                [
                    (row.subject_id, _share(row.counts, in_time, done), "#00897b")
                    for row in zones
                    if row.counts.get(done.value)
                ],
                unit="%",
            )
        )
    sections.append("<h2>Trend: zone totals this year</h2><table><tr><th>zone</th>")
    quarters = sorted({quarter for points in report.trends.values() for quarter, _ in points})
    sections.append("".join(f"<th>{escape(q)}</th>" for q in quarters) + "</tr>")
    for zone, points in report.trends.items():
        by_quarter = dict(points)
        cells = "".join(f"<td>{by_quarter.get(q, Decimal(0))}</td>" for q in quarters)
        sections.append(f"<tr><td>{escape(zone)}</td>{cells}</tr>")
    sections.append("</table>")
    body = "\n".join(sections)
    return (
        '<!doctype html><html lang="zh"><head><meta charset="utf-8">'
        f"<title>Assessment {escape(report.quarter)}</title></head><body>{body}</body></html>\n"
    )


def render_csv(report: QuarterReport) -> str:
    """One line per unit: rank, tier, scores, then every KPI counted in the report."""
    kpis = sorted({kpi for row in report.rows for kpi in row.counts})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    header = ["quarter", "level", "subject_id", "zones", "rank", "tier"]
    writer.writerow([*header, "quantitative", "qualitative", "total", *kpis])
    for row in report.rows:
        writer.writerow(
            [
                report.quarter,
                row.level,
                row.subject_id,
                " ".join(row.zones),
                row.rank,
                row.tier,
                row.quantitative,
                row.qualitative,
                row.total,
                *(row.counts.get(kpi, 0) for kpi in kpis),
            ]
        )
    return out.getvalue()
