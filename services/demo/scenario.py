"""A year of reports for the demo county, generated deterministically from a seed (no I/O)."""

from __future__ import annotations

import enum
import random
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta


class Fate(enum.StrEnum):
    """How the scenario means a clue to end; cases' workflow steps will play it out."""

    CASE_SANCTIONED = "case_sanctioned"
    CASE_NO_SANCTION = "case_no_sanction"
    INQUIRY = "inquiry"
    CLOSED = "closed"
    STORED_PENDING = "stored_pending"


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


# Published figures for a county of ~18 townships: ~600 clues a year from every channel, about
# half filed as cases, most of those ending in a sanction. County-division cadres are left out
# on purpose: intake forwards them upward and they never reach the county's ledger.
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
        Fate.CASE_SANCTIONED: 42,
        Fate.CASE_NO_SANCTION: 8,
        Fate.INQUIRY: 25,
        Fate.CLOSED: 20,
        Fate.STORED_PENDING: 5,
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
