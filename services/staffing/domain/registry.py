"""The county registry: zones, townships, villages and the people who work in them."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date


class Role(enum.StrEnum):
    """What a person does in the county's discipline-inspection organisation."""

    COUNTY_LEADERSHIP = "county_leadership"
    COMMISSION_HEAD = "commission_head"
    ZONE_CHIEF = "zone_chief"
    DEPUTY_CHIEF = "deputy_chief"
    TOWNSHIP_SECRETARY = "township_secretary"
    TOWNSHIP_MEMBER = "township_member"
    SUPERVISION_STAFF = "supervision_staff"
    HEARING_STAFF = "hearing_staff"
    INTAKE_OFFICER = "intake_officer"
    CUSTODIAN = "custodian"
    ASSESSOR = "assessor"
    VILLAGE_INFORMANT = "village_informant"


# Roles whose holders can be drawn onto a verification, investigation, hearing or review team.
CASE_WORKING_ROLES = frozenset(
    {
        Role.TOWNSHIP_SECRETARY,
        Role.TOWNSHIP_MEMBER,
        Role.SUPERVISION_STAFF,
        Role.HEARING_STAFF,
    }
)


class PersonStatus(enum.StrEnum):
    """Whether a person can take work on a given day."""

    ACTIVE = "active"
    ON_LEAVE = "on_leave"
    IN_TRAINING = "in_training"


@dataclass(frozen=True)
class StatusPeriod:
    """A status that holds from `start` to `end` inclusive (open-ended when `end` is None)."""

    status: PersonStatus
    start: date
    end: date | None = None

    def covers(self, day: date) -> bool:
        """Whether the period includes `day`."""
        return self.start <= day and (self.end is None or day <= self.end)


def status_on(periods: tuple[StatusPeriod, ...], day: date) -> PersonStatus:
    """The status on `day`: the latest-starting period covering it, active otherwise."""
    covering = [period for period in periods if period.covers(day)]
    if not covering:
        return PersonStatus.ACTIVE
    return max(covering, key=lambda period: period.start).status


@dataclass(frozen=True)
class Zone:
    """A collaboration zone (协作区) led by a zone chief and a deputy chief."""

    zone_id: str
    county_id: str
    name: str
    chief_id: str | None = None
    deputy_id: str | None = None


@dataclass(frozen=True)
class Township:
    """A township (乡镇) placed in a zone from a date on."""

    township_id: str
    county_id: str
    zone_id: str
    name: str
    effective_from: date


@dataclass(frozen=True)
class Village:
    """A village (村) of a township."""

    village_id: str
    township_id: str
    name: str


@dataclass(frozen=True)
class Person:
    """Someone on the county's register; county-level staff have no home township."""

    person_id: str
    county_id: str
    name: str
    roles: frozenset[Role]
    home_township_id: str | None
    zone_id: str | None
    skills: frozenset[str] = frozenset()
    statuses: tuple[StatusPeriod, ...] = ()
    workload_cap: int = 3
    village_id: str | None = None

    @property
    def is_informant(self) -> bool:
        """Informant identities are sensitive: never published, shown only to a few roles."""
        return Role.VILLAGE_INFORMANT in self.roles
