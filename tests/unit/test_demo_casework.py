"""The demo's case work plays every Fate to its end under cases' own rules (pure state machine)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from xiezuo.cases.v1 import cases_pb2

from services.cases.api.commands import command_of
from services.cases.domain.casefile import (
    Actor,
    CaseFile,
    Refused,
    handle,
    new_case_file,
)
from services.cases.domain.rules import DEFAULT_RULES
from services.cases.domain.teams import assign_team, team_kind
from services.demo.casework import CaseResult, CaseWork, CaseWorkSettings
from services.demo.county import load_county_plan
from services.demo.playbook import EXPULSIONS, playbook, sends_back
from services.demo.reference import year_figures
from services.demo.scenario import CountyPlan, Fate, ScriptedReport, generate_scenario


class _Refusal(Exception):
    pass


class FakeCases:
    """CaseService over the pure workflow: teams are drawn at once (or never, when unfillable)."""

    def __init__(self, zone_of: Mapping[str, str], *, unfillable: frozenset[str] = frozenset()):
        self.files: dict[str, CaseFile] = {}
        self.zone_of = zone_of
        self.unfillable = unfillable
        self.people = (f"p-{n:03d}" for n in itertools.count(100))
        self.actors: list[tuple[str, str]] = []

    def register(self, case_id: str, level: str) -> None:
        self.files[case_id] = new_case_file(case_id, level, DEFAULT_RULES)

    def _summary(self, file: CaseFile) -> cases_pb2.CaseSummary:
        summary = cases_pb2.CaseSummary(
            case_id=file.case_id,
            stage=file.stage,
            working_team=list(file.working_team),
            hearing_team=list(file.hearing_team),
            review_team=list(file.review_team),
            filed=file.filed,
            team_requested=file.team_requested,
        )
        if file.pending is not None:
            summary.pending.kind = file.pending.kind
            summary.pending.next_approver = file.pending.next_approver
            summary.pending.choice = file.pending.choice
        return summary

    def _actor(self, metadata: Sequence[tuple[str, str]], case_id: str) -> Actor:
        subject, roles, zone = metadata[0][1].removeprefix("Bearer ").split("|")
        assert zone == self.zone_of[case_id], "acted outside the case's zone"
        return Actor(subject, frozenset(roles.split(",")))

    async def ActOnCase(
        self, request: cases_pb2.ActOnCaseRequest, *, metadata: Any, **_: Any
    ) -> cases_pb2.ActOnCaseResponse:
        actor = self._actor(metadata, request.case_id)
        # The real request conversion, so the demo's meeting records and fields reach the rules.
        command = command_of(request)
        file = self.files[request.case_id]
        try:
            after = handle(file, command, actor, DEFAULT_RULES).after
        except Refused as refused:
            raise _Refusal(f"{request.action} by {sorted(actor.roles)}: {refused.reason}") from None
        self.actors.append((actor.person_id, request.action))
        if after.team_requested:
            if request.case_id in self.unfillable:
                after = replace(after, team_requested="")
            else:
                kind = team_kind(after.stage)
                size = 3 if kind == "hearing" else 2
                members = tuple(next(self.people) for _ in range(size))
                after = assign_team(after, after.team_requested, members)
        self.files[request.case_id] = after
        return cases_pb2.ActOnCaseResponse(case=self._summary(after))

    async def GetCase(
        self, request: cases_pb2.GetCaseRequest, *, metadata: Any, **_: Any
    ) -> cases_pb2.GetCaseResponse:
        self._actor(metadata, request.case_id)
        return cases_pb2.GetCaseResponse(case=self._summary(self.files[request.case_id]))


class Stages:
    def __init__(self) -> None:
        self.seen: list[dict[str, int]] = []

    def staged(self, stages: Mapping[str, int]) -> None:
        self.seen.append(dict(stages))


@pytest.fixture(scope="module")
def county() -> CountyPlan:
    return load_county_plan()


def _mint(subject: str, roles: Sequence[str], zone_id: str) -> str:
    return f"{subject}|{','.join(roles)}|{zone_id}"


def _work(
    county: CountyPlan, reports: Sequence[ScriptedReport], unfillable: frozenset[str] = frozenset()
) -> tuple[list[CaseResult], FakeCases, Stages]:
    fake = FakeCases({r.key: r.zone_id for r in reports}, unfillable=unfillable)
    for report in reports:
        fake.register(report.key, report.cadre_level)
    work = CaseWork(
        fake,  # type: ignore[arg-type]
        county=county,
        rules=DEFAULT_RULES,
        mint=_mint,
        settings=CaseWorkSettings(concurrency=4, team_wait_seconds=1.0, poll_seconds=0.01),
    )
    observer = Stages()
    results = asyncio.run(work.work_all([(r.key, r) for r in reports], observer))
    return results, fake, observer


def _year(county: CountyPlan, count: int) -> tuple[ScriptedReport, ...]:
    start, until = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)
    return generate_scenario(county, seed=7, count=count, start=start, until=until)


def test_every_fate_and_cadre_level_reaches_its_planned_stage(county: CountyPlan) -> None:
    reports = _year(county, 80)
    assert {r.fate for r in reports} == set(Fate)
    results, fake, observer = _work(county, reports)
    for result in results:
        assert not result.stuck, result
        assert result.stage == result.planned_stage == fake.files[result.clue_id].stage
    decided = [fake.files[r.clue_id] for r in results if r.stage == "decided"]
    assert decided and all(f.filed and f.decision is not None for f in decided)
    sanctioned = [f for f in decided if f.decision is not None and f.decision.sanctions]
    assert sanctioned
    # The zone's own chief approves (a named person from the registry, not a role).
    assert any(person == county.zone_chiefs["z-1"] for person, _ in fake.actors)
    # Progress ends with every clue counted in its final stage.
    assert sum(observer.seen[-1].values()) == len(reports)


def test_an_unfillable_team_leaves_the_clue_stuck_on_its_road(county: CountyPlan) -> None:
    reports = [r for r in _year(county, 40) if r.fate is Fate.CASE_SANCTIONED][:3]
    stuck = frozenset({reports[0].key})
    results, _, _ = _work(county, reports, unfillable=stuck)
    by_id = {r.clue_id: r for r in results}
    assert "could not fill" in by_id[reports[0].key].stuck
    assert by_id[reports[0].key].stage == "verification"
    assert by_id[reports[0].key].stage in by_id[reports[0].key].road
    assert all(by_id[r.key].stage == "decided" for r in reports[1:])


def test_playbooks_are_deterministic_and_end_on_their_road() -> None:
    for fate in Fate:
        book = playbook(fate, "demo-1-x-00001")
        assert book == playbook(fate, "demo-1-x-00001")
        assert book.road[0] == "registered" and book.road[-1] == book.final_stage


def test_the_county_plan_names_each_zones_chief_deputy_and_a_leader(county: CountyPlan) -> None:
    assert set(county.zone_chiefs) == set(county.zone_ids) == set(county.zone_deputies)
    assert county.county_leader


def test_a_hearing_send_back_is_played_and_still_ends_decided(county: CountyPlan) -> None:
    cases = [r for r in _year(county, 200) if r.fate is Fate.CASE_SANCTIONED]
    zones = sorted(county.zone_chiefs)
    sent_back = [r for r in cases if playbook(r.fate, r.key, zones.index(r.zone_id)).sent_back]
    assert sent_back, "the scenario should send some files back at hearing"
    results, fake, _ = _work(county, sent_back[:2])
    for result in results:
        assert result.stage == "decided", result
        assert fake.files[result.clue_id].stage == "decided"


def test_zones_differ_in_how_often_files_come_back() -> None:
    keys = [f"demo-{n:05d}" for n in range(2000)]
    shares = {zone: sum(sends_back(zone, key) for key in keys) for zone in range(6)}
    assert len(set(shares.values())) == 6, shares
    assert all(share < len(keys) * 0.15 for share in shares.values()), shares


def test_every_road_of_the_year_is_walked_under_the_rules(county: CountyPlan) -> None:
    reports = _year(county, 80)
    results, fake, _ = _work(county, reports)
    by_fate: dict[Fate, list[CaseResult]] = {}
    for result in results:
        assert not result.stuck, result
        by_fate.setdefault(Fate(result.fate), []).append(result)
    (retained,) = by_fate[Fate.CASE_RETAINED]
    held = fake.files[retained.clue_id]
    # 留置 extended once, 双开 with the transfer, one supplementary round, then prosecuted.
    assert held.retention == "ended" and held.retention_extensions == 1
    assert held.extensions_of("investigation") == 1
    assert held.decision is not None and held.decision.kind == "transfer"
    assert {(s.track, s.kind) for s, _ in held.decision.sanctions} == set(EXPULSIONS)
    assert held.supplementary_rounds == 1 and held.stage == "closed"
    twice = fake.files[by_fate[Fate.CASE_APPEALED_TWICE][0].clue_id]
    # 复审 upheld by the county, 复核 by the city commission changed the outcome.
    assert twice.appeal_level == 2 and twice.decision is not None
    assert twice.decision.kind == "education" and not twice.decision.sanctions
    assert ("demo-city-commission", "decide_appeal") in fake.actors
    escalated = fake.files[by_fate[Fate.INQUIRY_ESCALATED][0].clue_id]
    assert escalated.filed and escalated.inquiry_rounds == 0
    for result in by_fate[Fate.VERIFIED_NOT_FILED] + by_fate[Fate.VERIFIED_STORED]:
        assert not fake.files[result.clue_id].filed
    figures = year_figures(len(results), results)
    assert all(count > 0 for count in figures.roads.values()), figures.roads
    assert all(figures.forms), figures.forms
    assert 0 < figures.sanctioned < figures.filed < len(results)


def test_a_late_clue_enters_its_disposal_or_investigation_after_the_time_limit(
    county: CountyPlan,
) -> None:
    assert playbook(Fate.CLOSED, "k", late=True).late_step == "approve_disposal"
    assert playbook(Fate.INQUIRY, "k", late=True).late_step == "approve_disposal"
    assert playbook(Fate.CASE_SANCTIONED, "k", late=True).late_step == (
        "submit_investigation_report"
    )
    assert not playbook(Fate.CASE_SANCTIONED, "k").late_step
    reports = _year(county, 600)
    late = [r for r in reports if r.late]
    # A few breached deadlines, not none and not many.
    assert 2 <= len(late) < 0.06 * len(reports)
    # The late disposal lands past the one-month limit (propose ≤ 14 days, late ≥ 30 more).
    late_closed = replace(late[0], fate=Fate.CLOSED)
    results, _, _ = _work(county, [late_closed])
    (result,) = results
    assert result.stage == "closed" and result.concluded_at is not None
    assert (result.concluded_at - late_closed.registered_at).days > 31
