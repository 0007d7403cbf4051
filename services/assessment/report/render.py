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
# Room for "name (id)" labels left of the bars.
LABEL_WIDTH = 220
TIER_COLOURS = {"top": "#2e7d32", "middle": "#607d8b", "bottom": "#c62828"}
FORM_COLOURS = {1: "#66bb6a", 2: "#ffca28", 3: "#ef6c00", 4: "#b71c1c"}
FORM_NAMES = {
    1: "1 批评教育、谈话函询",
    2: "2 轻处分、组织调整",
    3: "3 重处分、重大职务调整",
    4: "4 严重违纪涉嫌违法移送",
}


def _bars(items: Sequence[tuple[str, float, str]], unit: str = "") -> str:
    """A horizontal bar chart as inline SVG: (label, value, colour) per bar."""
    if not items:
        return "<p>No data.</p>"
    top = max((value for _, value, _ in items), default=0) or 1
    height = 22 * len(items) + 4
    parts = [f'<svg width="{BAR_WIDTH + LABEL_WIDTH + 110}" height="{height}" role="img">']
    for index, (label, value, colour) in enumerate(items):
        y = 22 * index + 2
        width = max(1, int(BAR_WIDTH * value / top))
        parts.append(
            f'<text x="0" y="{y + 14}" font-size="12">{escape(label)}</text>'
            f'<rect x="{LABEL_WIDTH}" y="{y}" width="{width}" height="18" fill="{colour}"/>'
            f'<text x="{LABEL_WIDTH + 4 + width}" y="{y + 14}" font-size="12">'
            f"{value:g}{unit}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _four_forms(report: QuarterReport, zones: Sequence[ReportRow]) -> list[str]:
    """People dealt with per zone in each of the four forms, and the county's spread."""
    kpi = Kpi.FOUR_FORMS.value
    totals = {form: sum(row.counts.get(f"{kpi}.{form}", 0) for row in zones) for form in FORM_NAMES}
    people = sum(totals.values())
    sections = [
        "<h2>Four forms (四种形态): people dealt with</h2>",
        "<p>Each person counts once per quarter, in the highest form their outcomes reached "
        "(a year adds its quarters).</p>",
        _bars([(FORM_NAMES[form], float(n), FORM_COLOURS[form]) for form, n in totals.items()]),
        "<table><tr><th>zone</th>"
        + "".join(f"<th>{escape(name)}</th>" for name in FORM_NAMES.values())
        + "<th>people</th></tr>",
    ]
    for row in zones:
        cells = "".join(f"<td>{row.counts.get(f'{kpi}.{form}', 0)}</td>" for form in FORM_NAMES)
        label = escape(report.label("zone", row.subject_id))
        sections.append(f"<tr><td>{label}</td>{cells}<td>{row.counts.get(kpi, 0)}</td></tr>")
    shares = "".join(
        f"<td>{round(100 * n / people, 1) if people else 0}%</td>" for n in totals.values()
    )
    sections.append(f"<tr><td>county (share)</td>{shares}<td>{people}</td></tr></table>")
    return sections


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
    scope = f"zone {report.label('zone', report.zone_id)}" if report.zone_id else "all zones"
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
                    (
                        f"{row.rank}. {report.label(level, row.subject_id)}",
                        float(row.total),
                        TIER_COLOURS[row.tier],
                    )
                    for row in rows
                ]
            )
        )
    sections.extend(_four_forms(report, zones))
    decisions = _sum_prefixed(zones, f"{Kpi.DECISIONS.value}.")
    sections.append("<h2>Decisions by type</h2>")
    sections.append(_bars([(kind, float(n), "#5c6bc0") for kind, n in decisions.items()]))
    sections.append("<h2>Deadline compliance: limits missed per zone</h2>")
    sections.append(
        _bars(
            [
                (
                    report.label("zone", row.subject_id),
                    float(row.counts.get(Kpi.DEADLINES_BREACHED.value, 0)),
                    "#ef6c00",
                )
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
                    (
                        report.label("zone", row.subject_id),
                        _share(row.counts, in_time, done),
                        "#00897b",
                    )
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
        sections.append(f"<tr><td>{escape(report.label('zone', zone))}</td>{cells}</tr>")
    sections.append("</table>")
    sections.extend(_help(report))
    body = "\n".join(sections)
    return (
        '<!doctype html><html lang="zh"><head><meta charset="utf-8">'
        f"<title>Assessment {escape(report.quarter)}</title></head><body>{body}</body></html>\n"
    )


HELP_COLUMNS = (
    "letters_sent",
    "letters_answered_for_us",
    "letters_answered_by_us",
    "letters_overdue",
    "letters_overdue_for_us",
)


def _help(report: QuarterReport) -> list[str]:
    """Help between counties (协查): the county line (`*`), then each zone's."""
    if not report.help:
        return []
    head = "".join(f"<th>{name}</th>" for name in HELP_COLUMNS)
    lines = [
        "<h2>Help between counties (协查函)</h2>",
        "<p>Help given and overdue letters are the county's: the asked county's letter names "
        "no zone.</p>",
        f"<table><tr><th>unit</th>{head}<th>mean days to answer</th>"
        "<th>median days to answer</th></tr>",
    ]
    for unit, summary in report.help.items():
        label = "county" if unit == "*" else report.label("zone", unit)
        cells = "".join(f"<td>{getattr(summary, name)}</td>" for name in HELP_COLUMNS)
        mean, median = summary.mean_days_to_answer, summary.median_days_to_answer
        lines.append(
            f"<tr><td>{escape(label)}</td>{cells}"
            f"<td>{'' if mean is None else mean}</td><td>{'' if median is None else median}</td>"
            "</tr>"
        )
    lines.append("</table>")
    return lines


def render_csv(report: QuarterReport) -> str:
    """One line per unit: its name, rank, tier, scores, then every KPI counted in the report."""
    # The four forms always have their columns, so a reader finds a form nobody reached as 0.
    forms = {Kpi.FOUR_FORMS.value, *(f"{Kpi.FOUR_FORMS.value}.{form}" for form in FORM_NAMES)}
    kpis = sorted({kpi for row in report.rows for kpi in row.counts} | forms)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    header = ["quarter", "level", "subject_id", "name", "zones", "zone_names", "rank", "tier"]
    writer.writerow([*header, "quantitative", "qualitative", "total", *kpis])
    for row in report.rows:
        writer.writerow(
            [
                report.quarter,
                row.level,
                row.subject_id,
                row.name,
                " ".join(row.zones),
                " ".join(report.names.get(("zone", zone), "") or zone for zone in row.zones),
                row.rank,
                row.tier,
                row.quantitative,
                row.qualitative,
                row.total,
                *(row.counts.get(kpi, 0) for kpi in kpis),
            ]
        )
    return out.getvalue()
