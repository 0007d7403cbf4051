"""Closed vocabularies of a report: channels and cadre-management levels."""

from __future__ import annotations

import enum


class Channel(enum.StrEnum):
    """How a report reached the commission."""

    LETTER = "letter"
    VISIT = "visit"
    PHONE = "phone"
    ONLINE = "online"
    VILLAGE_INFORMANT = "village_informant"
    DAILY_SUPERVISION = "daily_supervision"
    SPECIAL_CAMPAIGN = "special_campaign"
    INSPECTION_TOUR = "inspection_tour"
    FORWARDED = "forwarded"


class CadreLevel(enum.StrEnum):
    """Cadre-management level of the person reported; jurisdiction follows it."""

    UNKNOWN = "unknown"
    VILLAGE = "village"
    TOWNSHIP = "township"
    COUNTY_SECTION = "county_section"
    COUNTY_DIVISION = "county_division"
    OTHER_PUBLIC_EMPLOYEE = "other_public_employee"
