"""The demo year's figures, the roads it walked, and a county's year to compare them with."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from services.demo.casework import CaseResult, Outcome


@dataclass(frozen=True)
class ReferenceProfile:
    """A county commission's year in round figures, to hold the demo year against."""

    label: str
    source: str
    population: int
    clues: int
    filed: int
    sanctioned: int
    # Shares of the four forms (四种形态) in percent, first to fourth.
    forms_percent: tuple[float, float, float, float]


# Not one county's official figures: an approximate profile in the range county commissions'
# annual work reports publish for a county of ~400,000 people, and of the national four-forms
# split (the first form about two-thirds to seven-tenths of everyone dealt with, the fourth a
# few percent). DOMAIN.md quotes one real county's zones (Zhouzhi, 2020: 626 clues disposed,
# 310 cases filed, 285 people sanctioned), a county that files far more than most.
REFERENCE = ReferenceProfile(
    label="approximate reference profile (not a specific county's official data)",
    source=(
        "typical annual work report of a county commission, county of ~400,000 people; "
        "four forms in the national proportions"
    ),
    population=400_000,
    clues=500,
    filed=120,
    sanctioned=110,
    forms_percent=(70.0, 22.0, 5.0, 3.0),
)

# 四种形态, as DOMAIN.md §5 defines them: heavy sanctions and major adjustments are the third.
_HEAVY = frozenset(
    {
        ("party", "removal_from_post"),
        ("party", "probation"),
        ("party", "expulsion"),
        ("government", "demotion"),
        ("government", "dismissal"),
        ("government", "expulsion"),
    }
)
_MAJOR_MEASURES = frozenset({"ordered_resignation", "removal_from_office", "demotion_in_post"})
_FIRST_FORM_DECISIONS = frozenset({"education", "accountability"})


def form_of(outcome: Outcome) -> int:
    """The form (1–4) a concluded clue's person is placed in; 0 when nobody was dealt with."""
    if outcome.kind == "inquiry":
        return 0 if outcome.choice == "accept_and_close" else 1
    if outcome.kind == "verification":
        return 1 if outcome.choice == "reminder_talk" else 0
    if outcome.choice == "transfer":
        return 4
    if set(outcome.sanctions) & _HEAVY or set(outcome.measures) & _MAJOR_MEASURES:
        return 3
    if outcome.sanctions or outcome.measures:
        return 2
    return 1 if outcome.choice in _FIRST_FORM_DECISIONS else 0


# The roads of the year, as (label, how a clue's steps show it). Each counts clues.
_ROADS: tuple[tuple[str, str], ...] = (
    ("letters of inquiry sent (函询)", "send_inquiry_letter"),
    ("inquiries escalated to verification", "record_inquiry_outcome:escalate_to_verification"),
    ("verifications ended without filing (了结/谈话提醒/移交)", "approve_outcome:close"),
    ("verifications ended stored pending (暂存待查)", "approve_outcome:store"),
    ("stored clues reviewed and kept", "review_stored:keep"),
    ("cases filed (立案)", "notify_unit"),
    ("files sent back by the hearing (退回补充调查)", "send_back"),
    ("investigations extended one level up", "approve_extension"),
    ("retentions (留置)", "approve_retention"),
    ("transfers to the procuratorate with 双开", "approve_decision:transfer"),
    (
        "returned for supplementary investigation",
        "record_procuratorate_decision:return_supplementary",
    ),
    ("prosecuted after transfer", "record_procuratorate_decision:prosecute"),
    ("organisational handling alone (组织处理)", "approve_decision:organisational_handling"),
    ("appeals filed by the sanctioned person", "file_appeal"),
    ("outcomes changed on appeal", "decide_appeal:changed"),
)
# Verification outcomes that end without a filing (besides storing).
_NOT_FILED = ("approve_outcome:close", "approve_outcome:reminder_talk", "approve_outcome:refer")


@dataclass(frozen=True)
class YearFigures:
    """What the demo year produced, counted from the steps the services accepted."""

    clues: int
    filed: int
    sanctioned: int
    forms: tuple[int, int, int, int]
    roads: Mapping[str, int] = field(default_factory=dict)


def year_figures(clues: int, results: Iterable[CaseResult]) -> YearFigures:
    """Counts of filings, sanctioned people, the four forms and every road of the year."""
    cases = list(results)
    forms: Counter[int] = Counter()
    sanctioned = 0
    for case in cases:
        if case.outcome is None:
            continue
        forms[form_of(case.outcome)] += 1
        sanctioned += bool(case.outcome.sanctions)
    roads = {label: sum(1 for case in cases if _walked(case, step)) for label, step in _ROADS}
    roads["first reviews (复审, county commission)"] = sum(
        1 for case in cases if _count(case, "decide_appeal") >= 1
    )
    roads["second reviews (复核, city commission)"] = sum(
        1 for case in cases if _count(case, "decide_appeal") >= 2
    )
    roads["retentions extended once"] = sum(
        1 for case in cases if _count(case, "approve_retention") >= 2
    )
    return YearFigures(
        clues=clues,
        filed=sum(1 for case in cases if case.filed),
        sanctioned=sanctioned,
        forms=(forms[1], forms[2], forms[3], forms[4]),
        roads=roads,
    )


def _walked(case: CaseResult, step: str) -> bool:
    wanted = _NOT_FILED if step == "approve_outcome:close" else (step,)
    return any(taken in wanted for taken in case.steps)


def _count(case: CaseResult, action: str) -> int:
    return sum(1 for taken in case.steps if taken.split(":", 1)[0] == action)


def percent(part: int, whole: int) -> float:
    """part of whole in percent (0 when whole is 0)."""
    return 100.0 * part / whole if whole else 0.0


def comparison(
    figures: YearFigures, reference: ReferenceProfile = REFERENCE
) -> list[tuple[str, str, str]]:
    """Rows (measure, demo year, reference) comparing the two years, per 100 clues too."""
    people = sum(figures.forms)
    ref = reference
    rows = [
        ("clues", str(figures.clues), str(ref.clues)),
        (
            "cases filed (per 100 clues)",
            f"{figures.filed} ({percent(figures.filed, figures.clues):.0f})",
            f"{ref.filed} ({percent(ref.filed, ref.clues):.0f})",
        ),
        (
            "people sanctioned (per 100 clues)",
            f"{figures.sanctioned} ({percent(figures.sanctioned, figures.clues):.0f})",
            f"{ref.sanctioned} ({percent(ref.sanctioned, ref.clues):.0f})",
        ),
    ]
    for form in range(4):
        rows.append(
            (
                f"four forms: form {form + 1} share",
                f"{percent(figures.forms[form], people):.0f} % ({figures.forms[form]})",
                f"{ref.forms_percent[form]:.0f} %",
            )
        )
    return rows
