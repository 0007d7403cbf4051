"""The four forms (四种形态): each outcome's form, and each person's highest form in a quarter."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from services.assessment.domain.kpis import Kpi

DEFAULT_FORMS_FILE = Path(__file__).with_name("four_forms.yaml")
FORMS = (1, 2, 3, 4)
COUNT_ONCE = ("quarter", "case")


def form_kpi(form: int) -> str:
    """The KPI counting people dealt with in `form`, e.g. `four_forms.3`."""
    return f"{Kpi.FOUR_FORMS.value}.{form}"


class FormsError(ValueError):
    """A four-forms rules document is malformed."""


@dataclass(frozen=True)
class FourFormsRules:
    """Which form each published outcome reaches (0: none)."""

    version: str
    person_counted_once_per: str
    inquiry_outcomes: Mapping[str, int]
    verification_outcomes: Mapping[str, int]
    decisions: Mapping[str, int]
    sanctions: Mapping[str, Mapping[str, int]]
    organisational_measures: Mapping[str, int]

    def inquiry(self, outcome: str) -> int | None:
        """A concluded letter of inquiry or talk's form; None when it concludes nothing."""
        return self.inquiry_outcomes.get(outcome)

    def verification(self, outcome: str) -> int | None:
        """An approved verification outcome's form; None when it is not an outcome for a person."""
        return self.verification_outcomes.get(outcome)

    def decision(
        self, kind: str, sanctions: Iterable[tuple[str, str]], measures: Iterable[str]
    ) -> tuple[int, str]:
        """A decision's form and what placed it there (`party:expulsion`, `transfer`, …).

        The highest of the kind, its sanctions and its measures; a kind, sanction or measure
        the rules do not list reaches no form (a county adds it to the rules).
        """
        best, basis = self.decisions.get(kind, 0), kind
        for track, sanction in sanctions:
            form = self.sanctions.get(track, {}).get(sanction, 0)
            if form > best:
                best, basis = form, f"{track}:{sanction}"
        for measure in measures:
            form = self.organisational_measures.get(measure, 0)
            if form > best:
                best, basis = form, f"measure:{measure}"
        return best, basis[:64]


@dataclass(frozen=True)
class Outcome:
    """One classified step of a case: its form, and whether it replaces the case's outcome."""

    case_id: str
    event_id: str
    occurred_at: datetime
    quarter: str
    zone_id: str
    township_id: str
    form: int
    replaces: bool = False


@dataclass(frozen=True)
class PersonForm:
    """A person's highest form in a quarter and the case (and event) that placed them there."""

    person: str
    form: int
    case_id: str
    event_id: str
    zone_id: str
    township_id: str


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def people_in_forms(
    outcomes: Sequence[Outcome],
    quarter: str,
    subjects: Mapping[str, str],
    rules: FourFormsRules,
) -> list[PersonForm]:
    """Everyone dealt with in `quarter`, once each, in the highest form of their cases.

    `outcomes` hold every outcome of the cases concerned, of any quarter: a case belongs to
    the quarter of its first outcome, and its last outcome (a changed appeal) is its form.
    `subjects` maps a case to its subject's key (a case without one is its own person).
    """
    by_case: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        by_case.setdefault(outcome.case_id, []).append(outcome)
    best: dict[str, tuple[int, tuple[datetime, str], Outcome]] = {}
    for case_id, steps in by_case.items():
        steps.sort(key=lambda step: (_utc(step.occurred_at), step.event_id))
        first = next((step for step in steps if not step.replaces), steps[0])
        last = steps[-1]
        if first.quarter != quarter or last.form not in FORMS:
            continue
        person = case_id
        if rules.person_counted_once_per == "quarter":
            person = subjects.get(case_id) or f"case:{case_id}"
        order = (_utc(first.occurred_at), case_id)
        held = best.get(person)
        # The highest form wins; between equal forms, the earlier case keeps the person.
        if held is None or last.form > held[0] or (last.form == held[0] and order < held[1]):
            best[person] = (last.form, order, last)
    return [
        PersonForm(person, form, step.case_id, step.event_id, step.zone_id, step.township_id)
        for person, (form, _order, step) in sorted(best.items())
    ]


def load_four_forms(path: Path = DEFAULT_FORMS_FILE) -> FourFormsRules:
    """The four-forms mapping from its YAML file, validated."""
    return parse_four_forms(yaml.safe_load(path.read_text(encoding="utf-8")))


def _forms(item: Any, where: str) -> dict[str, int]:
    if not isinstance(item, dict):
        raise FormsError(f"{where} must be a mapping")
    parsed: dict[str, int] = {}
    for key, value in item.items():
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 4:
            raise FormsError(f"{where}.{key} must be a form 0..4")
        parsed[str(key)] = value
    return parsed


def parse_four_forms(document: Any) -> FourFormsRules:
    """The mapping from a parsed YAML document; raises FormsError naming the problem."""
    if not isinstance(document, dict) or not document.get("version"):
        raise FormsError("the document needs a `version`")
    once = document.get("person_counted_once_per", "quarter")
    if once not in COUNT_ONCE:
        raise FormsError(f"person_counted_once_per must be one of {list(COUNT_ONCE)}")
    sanctions = document.get("sanctions") or {}
    if not isinstance(sanctions, dict):
        raise FormsError("sanctions must map a track to its kinds")
    return FourFormsRules(
        version=str(document["version"]),
        person_counted_once_per=once,
        inquiry_outcomes=_forms(document.get("inquiry_outcomes") or {}, "inquiry_outcomes"),
        verification_outcomes=_forms(
            document.get("verification_outcomes") or {}, "verification_outcomes"
        ),
        decisions=_forms(document.get("decisions") or {}, "decisions"),
        sanctions={
            str(track): _forms(kinds, f"sanctions.{track}") for track, kinds in sanctions.items()
        },
        organisational_measures=_forms(
            document.get("organisational_measures") or {}, "organisational_measures"
        ),
    )
