"""A year of reports for the demo county, generated deterministically from a seed (no I/O)."""

from __future__ import annotations

import enum
import random
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta


class Fate(enum.StrEnum):
    """The road the scenario sends a clue down; cases' workflow steps will play it out."""

    # Filed (立案), heard and sanctioned.
    CASE_SANCTIONED = "case_sanctioned"
    # Filed and heard, then education (批评教育) and no sanction.
    CASE_NO_SANCTION = "case_no_sanction"
    # Filed and heard, then organisational handling (组织处理) alone, no sanction.
    CASE_ORGANISATIONAL = "case_organisational"
    # Sanctioned, then the person asks for a review (复审) by the county commission.
    CASE_APPEALED = "case_appealed"
    # Sanctioned, reviewed (复审, upheld), then re-examined one level up (复核, city commission),
    # which changes the outcome.
    CASE_APPEALED_TWICE = "case_appealed_twice"
    # 双开 decided with the transfer to the procuratorate (移送检察机关), which prosecutes.
    CASE_TRANSFERRED = "case_transferred"
    # The year's one retention (留置, extended once), then 双开, transfer, one round of
    # supplementary investigation (退回补充调查) and prosecution.
    CASE_RETAINED = "case_retained"
    # 谈话函询 that ends with the clue closed (reminder talk, criticism, explanation accepted).
    INQUIRY = "inquiry"
    # A letter of inquiry (函询) whose reply does not explain: escalated to verification, filed.
    INQUIRY_ESCALATED = "inquiry_escalated"
    # 初步核实 that ends without filing: closed (了结) or a reminder talk.
    VERIFIED_NOT_FILED = "verified_not_filed"
    # 初步核实 that ends with the clue stored pending (暂存待查).
    VERIFIED_STORED = "verified_stored"
    CLOSED = "closed"
    STORED_PENDING = "stored_pending"


# Long roads every year walks, however small the run: each is given to one of the earliest
# reports that would otherwise take a common road, so it has the year to finish.
LONG_ROADS = (
    Fate.CASE_RETAINED,
    Fate.CASE_APPEALED_TWICE,
    Fate.CASE_TRANSFERRED,
    Fate.CASE_APPEALED,
    Fate.INQUIRY_ESCALATED,
)
# Roads every year walks at least once: the long ones, and these when the draw missed them.
RARE_FATES = (
    *LONG_ROADS,
    Fate.VERIFIED_STORED,
    Fate.VERIFIED_NOT_FILED,
    Fate.CASE_NO_SANCTION,
    Fate.CASE_ORGANISATIONAL,
    Fate.STORED_PENDING,
)
# Fates whose road goes through filing (立案).
FILED_FATES = frozenset(
    {
        Fate.CASE_SANCTIONED,
        Fate.CASE_NO_SANCTION,
        Fate.CASE_ORGANISATIONAL,
        Fate.CASE_APPEALED,
        Fate.CASE_APPEALED_TWICE,
        Fate.CASE_TRANSFERRED,
        Fate.CASE_RETAINED,
        Fate.INQUIRY_ESCALATED,
    }
)
# Fates whose late step is the disposal (a clue disposed of after its month).
_LATE_DISPOSAL = frozenset({Fate.INQUIRY, Fate.CLOSED})
# Fates a rare road may replace (never another rare one).
_COMMON_FATES = frozenset({Fate.INQUIRY, Fate.CLOSED, Fate.CASE_SANCTIONED})


@dataclass(frozen=True)
class StaffMember:
    """A township's staff member (trained, attended and marked over the year)."""

    person_id: str
    zone_id: str


@dataclass(frozen=True)
class TownshipPlan:
    """One township as the scenario sees it: its zone, villages, informants and staff."""

    township_id: str
    zone_id: str
    villages: tuple[str, ...]
    name: str = ""
    informant_ids: tuple[str, ...] = ()
    staff_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class CountyPlan:
    """The county the scenario runs in."""

    county_id: str
    townships: tuple[TownshipPlan, ...]
    # Who approves in each zone (区长, 副区长) and for the county: cases' workflow acts as them.
    zone_chiefs: Mapping[str, str] = field(default_factory=dict)
    zone_deputies: Mapping[str, str] = field(default_factory=dict)
    county_leader: str = ""
    # The county commission's leadership (members of its standing committee).
    leadership: tuple[str, ...] = ()
    # Names of zones, townships, villages and staff by id (the county file's own).
    names: Mapping[str, str] = field(default_factory=dict)
    staff: tuple[StaffMember, ...] = ()
    assessor: str = ""

    def name(self, some_id: str) -> str:
        """The county file's name for an id, or the id itself when it has none."""
        return self.names.get(some_id, some_id)

    @property
    def zone_ids(self) -> tuple[str, ...]:
        """Zones in first-seen order."""
        return tuple(dict.fromkeys(t.zone_id for t in self.townships))


@dataclass(frozen=True)
class ScenarioMix:
    """The shares the scenario draws from (weights, not percentages): data, not code paths."""

    channels: Mapping[str, float]
    cadre_levels: Mapping[str, float]
    categories: Mapping[str, float]
    fates: Mapping[Fate, float]
    real_name_share: float
    campaign_id: str
    # Share of clues with one step entered after its time limit (a breached deadline).
    late_share: float = 0.03
    # Months of the year the campaign runs (inclusive): its clues arrive in that window.
    campaign_months: tuple[int, int] = (3, 10)


# A county of ~18 townships: ~600 clues a year from every channel. The fates follow the shape of
# a county's year (services/demo/reference.py): about a quarter of the clues filed, most of
# those sanctioned; 谈话函询 the commonest disposal, so the first of the four forms dominates;
# transfers and appeals rare. County-division cadres are left out on purpose: intake forwards
# them upward and they never reach the county's ledger.
DEFAULT_MIX = ScenarioMix(
    channels={
        "letter": 18,
        "online": 22,
        "phone": 10,
        "visit": 8,
        "village_informant": 10,
        "daily_supervision": 12,
        "special_campaign": 7,
        "inspection_tour": 7,
        "forwarded": 6,
    },
    cadre_levels={"village": 55, "township": 33, "county_section": 6, "other_public_employee": 6},
    categories={
        "poverty_alleviation_funds": 14,
        "favoritism_in_subsidies": 12,
        "land_and_collective_assets": 14,
        "work_style": 16,
        "embezzlement": 9,
        "bribery": 5,
        "abuse_of_power": 7,
        "dereliction_of_duty": 7,
        "environment": 5,
        "education": 3,
        "healthcare": 3,
        "housing": 3,
        "election_interference": 2,
    },
    fates={
        Fate.INQUIRY: 36,
        Fate.INQUIRY_ESCALATED: 2.5,
        Fate.CLOSED: 13,
        Fate.STORED_PENDING: 3.5,
        Fate.VERIFIED_NOT_FILED: 15,
        Fate.VERIFIED_STORED: 2,
        Fate.CASE_SANCTIONED: 18,
        Fate.CASE_APPEALED: 1.2,
        Fate.CASE_APPEALED_TWICE: 0.6,
        Fate.CASE_NO_SANCTION: 1.5,
        Fate.CASE_ORGANISATIONAL: 1,
        Fate.CASE_TRANSFERRED: 1,
        # Exactly one a year: given to an early report by RARE_FATES, never drawn.
        Fate.CASE_RETAINED: 0,
    },
    real_name_share=0.3,
    campaign_id="camp-2026-rural-funds",
)

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾萧田董潘袁蔡蒋余"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国志红德福永庆春兰"
_POSTS = {
    "village": ("村党支部书记", "村委会主任", "村会计", "村监委会主任"),
    "township": ("镇民政办主任", "镇农业站站长", "镇财政所所长", "镇包村干部"),
    "county_section": ("镇党委副书记", "镇长", "县局股长"),
    "other_public_employee": ("镇卫生院院长", "中心小学校长", "镇水管站职工"),
}
_FORWARDING_BODIES = ("市纪委监委信访室", "县委巡察办", "县信访局", "邻县纪委监委")
_CONTENTS = {
    "poverty_alleviation_funds": "反映{who}截留、挪用扶贫项目资金",
    "favoritism_in_subsidies": "反映{who}在低保、补贴评定中优亲厚友",
    "land_and_collective_assets": "反映{who}违规处置村集体土地和资产",
    "work_style": "反映{who}作风漂浮、违规吃喝",
    "embezzlement": "反映{who}贪污集体资金",
    "bribery": "反映{who}收受工程承包人财物",
    "abuse_of_power": "反映{who}滥用职权违规审批",
    "dereliction_of_duty": "反映{who}履职不力造成损失",
    "environment": "反映{who}对违法排污问题放任不管",
    "education": "反映{who}违规收取学生费用",
    "healthcare": "反映{who}套取医保资金",
    "housing": "反映{who}在危房改造中违规操作",
    "election_interference": "反映{who}在村委换届中拉票贿选",
}


@dataclass(frozen=True)
class ScriptedReport:
    """One report the scenario submits, with the fate it is scripted to reach."""

    key: str
    county_id: str
    zone_id: str
    township_id: str
    channel: str
    subject_name: str
    subject_post: str
    subject_unit: str
    village: str
    cadre_level: str
    categories: tuple[str, ...]
    content: str
    real_name: bool
    received_at: datetime
    # When intake registered it on the (paper) ledger: within two days of receipt.
    registered_at: datetime
    fate: Fate
    campaign_id: str | None = None
    # One step of its road is entered after its time limit ran out (a breached deadline).
    late: bool = False
    # The channel's own details (intake's per-channel rules), as text like the request's.
    details: tuple[tuple[str, str], ...] = field(default_factory=tuple)


def generate_scenario(
    county: CountyPlan,
    *,
    seed: int,
    count: int,
    start: datetime,
    until: datetime,
    mix: ScenarioMix = DEFAULT_MIX,
) -> tuple[ScriptedReport, ...]:
    """`count` reports received between start and until, oldest first; same inputs, same list."""
    if count < 0:
        raise ValueError("count must not be negative")
    if not county.townships:
        raise ValueError("the county has no townships")
    if until <= start:
        raise ValueError("until must be after start")
    rng = random.Random(seed)
    run = until.strftime("%Y%m%d")
    span = (until - start).total_seconds()
    moments = sorted(start + timedelta(seconds=rng.uniform(0, span)) for _ in range(count))
    # Cycling through the townships first guarantees every zone takes part even in a small run.
    order = list(county.townships)
    rng.shuffle(order)
    seen: set[tuple[str, str, str, tuple[str, ...]]] = set()
    reports: list[ScriptedReport] = []
    for index, received_at in enumerate(moments):
        township = order[index] if index < len(order) else rng.choice(county.townships)
        channel = _pick(rng, mix.channels)
        report = _report(rng, county, township, channel, index, received_at, mix, seed, run)
        report = _registered(report, until)
        # An exact repeat would join an earlier clue instead of opening its own.
        profile = (report.subject_name, report.subject_unit, report.township_id, report.categories)
        while profile in seen:
            report = _report(rng, county, township, channel, index, received_at, mix, seed, run)
            report = _registered(report, until)
            profile = (
                report.subject_name,
                report.subject_unit,
                report.township_id,
                report.categories,
            )
        seen.add(profile)
        reports.append(report)
    return _with_rare_fates(reports)


def _with_rare_fates(reports: list[ScriptedReport]) -> tuple[ScriptedReport, ...]:
    """Every rare road walked at least once, by the earliest report taking a common one."""
    present = {report.fate for report in reports}
    missing = [
        *LONG_ROADS,
        *(fate for fate in RARE_FATES[len(LONG_ROADS) :] if fate not in present),
    ]
    for index, report in enumerate(reports):
        if not missing:
            break
        if report.fate in _COMMON_FATES:
            reports[index] = replace(report, fate=missing.pop(0))
    # A year has its few breached deadlines however small the run: a disposal and an
    # investigation entered late, on the earliest reports of the roads that have them.
    for late_on in (_LATE_DISPOSAL, frozenset({Fate.CASE_SANCTIONED})):
        first = next((i for i, r in enumerate(reports) if r.fate in late_on), None)
        if first is not None:
            reports[first] = replace(reports[first], late=True)
    return tuple(reports)


def _registered(report: ScriptedReport, until: datetime) -> ScriptedReport:
    # From the key, not the generator: the rest of the scenario stays as it was drawn.
    hours = zlib.crc32(f"{report.key}:registered".encode()) % 48
    return replace(report, registered_at=min(report.received_at + timedelta(hours=hours), until))


def _pick(rng: random.Random, weights: Mapping[str, float]) -> str:
    names = sorted(weights)
    return rng.choices(names, weights=[weights[name] for name in names])[0]


def _pick_fate(rng: random.Random, weights: Mapping[Fate, float]) -> Fate:
    fates = sorted(weights)
    return rng.choices(fates, weights=[weights[fate] for fate in fates])[0]


def _report(
    rng: random.Random,
    county: CountyPlan,
    township: TownshipPlan,
    channel: str,
    index: int,
    received_at: datetime,
    mix: ScenarioMix,
    seed: int,
    run: str,
) -> ScriptedReport:
    level = _pick(rng, mix.cadre_levels)
    first = _pick(rng, mix.categories)
    first_month, last_month = mix.campaign_months
    if channel == "special_campaign" and not first_month <= received_at.month <= last_month:
        # Outside the campaign's months the same finding comes from daily supervision.
        channel = "daily_supervision"
    categories = (first,) if rng.random() < 0.8 else tuple(sorted({first, "work_style"}))
    name = rng.choice(_SURNAMES) + "".join(rng.choices(_GIVEN, k=rng.choice((1, 2))))
    post = rng.choice(_POSTS[level])
    village = rng.choice(township.villages) if township.villages and level == "village" else ""
    unit = f"{village}委会" if village else f"{township.name or township.township_id}人民政府"
    who = f"{unit}{post}{name}"
    return ScriptedReport(
        # The run's last day is part of the key: a retry the same day submits nothing twice.
        key=f"demo-{seed}-{run}-{index:05d}",
        county_id=county.county_id,
        zone_id=township.zone_id,
        township_id=township.township_id,
        channel=channel,
        subject_name=name,
        subject_post=post,
        subject_unit=unit,
        village=village,
        cadre_level=level,
        categories=categories,
        content=_CONTENTS[first].format(who=who) + "。",
        real_name=rng.random() < mix.real_name_share,
        received_at=received_at,
        registered_at=received_at,
        fate=_pick_fate(rng, mix.fates),
        late=rng.random() < mix.late_share,
        campaign_id=mix.campaign_id if channel == "special_campaign" else None,
        details=_details(rng, channel, township, index, received_at),
    )


def _details(
    rng: random.Random, channel: str, township: TownshipPlan, index: int, received_at: datetime
) -> tuple[tuple[str, str], ...]:
    officer = rng.choice(township.staff_ids) if township.staff_ids else "p-001"
    moment = received_at.astimezone(UTC)
    if channel == "visit":
        return (("visit_date", moment.date().isoformat()), ("receiving_officer_id", officer))
    if channel == "phone":
        return (("called_at", moment.isoformat()), ("line", "12388"))
    if channel == "village_informant":
        informant = rng.choice(township.informant_ids) if township.informant_ids else "vi-0"
        return (("informant_id", informant),)
    if channel == "daily_supervision":
        return (("supervision_record_id", f"sup-{township.township_id}-{index:05d}"),)
    if channel == "inspection_tour":
        return (("tour_id", f"tour-{moment.year}-{1 + (moment.month - 1) // 6}"),)
    if channel == "forwarded":
        body = rng.choice(_FORWARDING_BODIES)
        return (("forwarding_body", body), ("forwarding_reference", f"ZB-{index:05d}"))
    return ()
