"""The demo county file read into the plan the scenario runs on."""

from __future__ import annotations

from pathlib import Path

from services.demo.scenario import CountyPlan, StaffMember, TownshipPlan
from services.staffing.domain.county_file import CountyRegistry, parse_county
from services.staffing.domain.registry import Role

# The county file `xiezuo up` loads on first run (the same one `xiezuo staffing import` takes).
DEMO_COUNTY_FILE = Path(__file__).resolve().parents[2] / "deploy" / "demo" / "county.yaml"


def load_county_plan(path: Path = DEMO_COUNTY_FILE) -> CountyPlan:
    """Parse the county file (staffing's own parser) into a scenario plan."""
    return county_plan(parse_county(path.read_text(encoding="utf-8")))


def county_plan(county: CountyRegistry) -> CountyPlan:
    """Townships with their zone, villages, village informants and township staff."""
    township_of_village = {v.village_id: v.township_id for v in county.villages}
    zone_of = {t.township_id: t.zone_id for t in county.townships}
    townships: list[TownshipPlan] = []
    for township in county.townships:
        tid = township.township_id
        townships.append(
            TownshipPlan(
                township_id=tid,
                zone_id=township.zone_id,
                name=township.name,
                villages=tuple(v.name for v in county.villages if v.township_id == tid),
                informant_ids=tuple(
                    p.person_id
                    for p in county.people
                    if Role.VILLAGE_INFORMANT in p.roles
                    and township_of_village.get(p.village_id or "") == tid
                ),
                staff_ids=tuple(
                    p.person_id
                    for p in county.people
                    if p.home_township_id == tid and Role.VILLAGE_INFORMANT not in p.roles
                ),
            )
        )
    leaders = [p.person_id for p in county.people if Role.COUNTY_LEADERSHIP in p.roles]
    # Every id a reader might meet in the output, with the name the county file gives it.
    names = {
        **{z.zone_id: z.name for z in county.zones},
        **{t.township_id: t.name for t in county.townships},
        **{v.village_id: v.name for v in county.villages},
        **{p.person_id: p.name for p in county.people if Role.VILLAGE_INFORMANT not in p.roles},
    }
    return CountyPlan(
        county_id=county.county_id,
        townships=tuple(townships),
        zone_chiefs={z.zone_id: z.chief_id for z in county.zones if z.chief_id},
        zone_deputies={z.zone_id: z.deputy_id for z in county.zones if z.deputy_id},
        county_leader=leaders[-1] if leaders else "",
        leadership=tuple(leaders),
        names={key: name for key, name in names.items() if name},
        staff=tuple(
            StaffMember(p.person_id, zone_of.get(p.home_township_id or "", ""))
            for p in county.people
            if p.home_township_id and Role.VILLAGE_INFORMANT not in p.roles
        ),
        assessor=next((p.person_id for p in county.people if Role.ASSESSOR in p.roles), ""),
    )
