"""Reading a county file: the demo county loads; a bad file is refused with every error by line."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.staffing.domain.county_file import CountyFileInvalid, parse_county
from services.staffing.domain.registry import Role

DEMO = Path(__file__).resolve().parents[2] / "deploy" / "demo" / "county.yaml"


def test_the_demo_county_has_the_real_shape() -> None:
    county = parse_county(DEMO.read_text(encoding="utf-8"))
    assert len(county.zones) == 6
    assert len(county.townships) == 18
    staff = [p for p in county.people if not p.is_informant]
    informants = [p for p in county.people if p.is_informant]
    assert 100 <= len(staff) <= 140
    assert informants and all(p.village_id for p in informants)
    assert all(zone.chief_id and zone.deputy_id for zone in county.zones)
    assert any(Role.COMMISSION_HEAD in p.roles for p in staff)


def test_a_bad_file_is_refused_with_every_error_by_line() -> None:
    text = "\n".join(
        [
            "county: {county_id: c, name: x}",
            "skills: [law]",
            "zones:",
            "  - zone_id: z",
            "    name: Z",
            "    chief: nobody",
            "    townships:",
            "      - {township_id: t, name: T, effective_from: 2026-01-01}",
            "people:",
            "  - {person_id: a, name: A, roles: [wizard]}",
            "  - {person_id: a, name: B, roles: [township_member], home_township: t-x}",
            "  - {person_id: b, name: C, roles: [township_member], skills: [magic]}",
            "  - {person_id: i, name: I, roles: [village_informant]}",
        ]
    )
    with pytest.raises(CountyFileInvalid) as raised:
        parse_county(text)
    errors = raised.value.errors
    assert any(e.startswith("line 10: people[0].roles.0") for e in errors)
    assert "line 11: id 'a' is already used on line 10" in errors
    assert "line 11: person a: unknown home_township 't-x'" in errors
    assert "line 12: person b: skill 'magic' is not in the county's skills" in errors
    assert "line 13: person i: a village informant needs a village" in errors
    assert "line 4: zone z: chief 'nobody' is not a listed person" in errors


def test_invalid_yaml_is_reported_with_its_line() -> None:
    with pytest.raises(CountyFileInvalid) as raised:
        parse_county("county: {county_id: c\nzones: [")
    assert raised.value.errors[0].startswith("line ")
