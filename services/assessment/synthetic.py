"""Deterministic synthetic event streams for the replay benchmark and tests (sample data)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from services.contracts.base import IntegrationEvent
from services.contracts.cases import CaseDecided, CaseFiled, TeamRequested
from services.contracts.intake import ClueRegistered, ReportedSubject
from services.contracts.staffing import RecusalRecorded, TeamAssigned, TeamMember, TeamUnfillable
from services.runtime.ids import time_ordered_uuid

YEAR_START = datetime(2026, 1, 1, tzinfo=UTC)
# The first synthetic event id's moment (ids sort by publication, runtime/ids.py).
PUBLISHED_FROM_MS = int(datetime(2027, 1, 1, tzinfo=UTC).timestamp() * 1000)
DECISIONS = ("education", "party_sanction", "government_sanction", "transfer")


@dataclass(frozen=True)
class SyntheticEvent:
    """An event with the id and CloudEvent time it would travel with."""

    event_id: str
    event: IntegrationEvent
    ce_time: datetime


@dataclass(frozen=True)
class County:
    """A synthetic county: zones of townships, each township with its staff."""

    county_id: str = "c-synth"
    zones: int = 6
    townships_per_zone: int = 3
    people_per_township: int = 8

    def township(self, zone: int, index: int) -> str:
        """Township id."""
        return f"t-{zone:02d}-{index:02d}"

    def person(self, zone: int, township: int, index: int) -> str:
        """Person id."""
        return f"p-{zone:02d}-{township:02d}-{index:02d}"


def synthetic_events(
    count: int, *, seed: int = 7, county: County | None = None
) -> Iterator[SyntheticEvent]:
    """`count` events spread over 2026, some delivered late (ce_time after their own time)."""
    shape = county or County()
    rng = random.Random(seed)
    for index in range(count):
        zone = rng.randrange(shape.zones)
        township = rng.randrange(shape.townships_per_zone)
        at = YEAR_START + timedelta(seconds=rng.randrange(365 * 86400))
        # One in ten arrives weeks late: the quarter must still come from `at`.
        ce_time = at + timedelta(days=rng.choice([0, 0, 0, 0, 0, 0, 0, 0, 0, 40]))
        event = _event(rng, shape, zone, township, at)
        # Minted in the order the events are published, as an outbox mints them; the same
        # draws as ever from `rng`, so a seed still gives the same events.
        event_id = time_ordered_uuid(
            at_ms=PUBLISHED_FROM_MS + index, random_bits=rng.getrandbits(128)
        )
        yield SyntheticEvent(str(event_id), event, ce_time)


def _event(
    rng: random.Random, shape: County, zone: int, township: int, at: datetime
) -> IntegrationEvent:
    county_id, zone_id = shape.county_id, f"z-{zone:02d}"
    township_id = shape.township(zone, township)
    case_id = f"case-{rng.getrandbits(40):x}"
    roll = rng.random()
    if roll < 0.05:
        step = CaseFiled if rng.random() < 0.6 else CaseDecided
        return step(
            county_id=county_id,
            zone_id=zone_id,
            case_id=f"clue-{rng.getrandbits(48):x}",
            township_id=township_id,
            action="approve_filing" if step is CaseFiled else "approve_decision",
            from_stage="filing_proposed" if step is CaseFiled else "decision_proposed",
            to_stage="investigation" if step is CaseFiled else "decided",
            actor="p-head",
            rule_version="cn-default-2026.1",
            occurred_at=at,
            detail={} if step is CaseFiled else {"decision": rng.choice(DECISIONS)},
        )
    if roll < 0.5:
        return ClueRegistered(
            county_id=county_id,
            zone_id=zone_id,
            clue_id=f"clue-{rng.getrandbits(48):x}",
            report_id=f"report-{rng.getrandbits(48):x}",
            township_id=township_id,
            channel="letter",
            allegation_categories=["misuse-of-funds"],
            subject=ReportedSubject(
                name="某某",
                post="村委会主任",
                unit="某村",
                township_id=township_id,
                cadre_level="village",
            ),
            real_name=rng.random() < 0.3,
            # One clue in ten comes in under the county's special campaign.
            campaign_id="campaign-funds" if rng.random() < 0.1 else None,
            received_at=at,
            registered_at=at,
        )
    if roll < 0.65:
        return TeamRequested(
            county_id=county_id,
            zone_id=zone_id,
            request_id=f"req-{rng.getrandbits(48):x}",
            case_id=case_id,
            stage="investigation",
            subject_township_id=township_id,
            subject_key=f"subject-{rng.getrandbits(32):x}",
            team_size=2,
            requested_by="p-chief",
            requested_at=at,
        )
    if roll < 0.85:
        # 异地办案: members come from the zone's other townships.
        others = [t for t in range(shape.townships_per_zone) if t != township] or [township]
        members = []
        for leader in (True, False):
            home = rng.choice(others)
            members.append(
                TeamMember(
                    person_id=shape.person(zone, home, rng.randrange(shape.people_per_township)),
                    home_township_id=shape.township(zone, home),
                    leader=leader,
                )
            )
        return TeamAssigned(
            county_id=county_id,
            zone_id=zone_id,
            request_id=f"req-{rng.getrandbits(48):x}",
            case_id=case_id,
            stage="investigation",
            draw_id=f"draw-{rng.getrandbits(48):x}",
            members=members,
            assigned_at=at,
        )
    if roll < 0.9:
        return TeamUnfillable(
            county_id=county_id,
            zone_id=zone_id,
            request_id=f"req-{rng.getrandbits(48):x}",
            case_id=case_id,
            stage="hearing",
            draw_id=f"draw-{rng.getrandbits(48):x}",
            reasons=["not enough eligible staff"],
            decided_at=at,
        )
    return RecusalRecorded(
        county_id=county_id,
        zone_id=zone_id,
        recusal_id=f"recusal-{rng.getrandbits(48):x}",
        case_id=case_id,
        person_id=shape.person(zone, township, rng.randrange(shape.people_per_township)),
        ground="close relative of the subject",
        raised_by_role="self",
        granted=rng.random() < 0.8,
        decided_by="p-head",
        decided_at=at,
    )
