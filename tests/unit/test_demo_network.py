"""The dev network `xiezuo up` imports, and the neighbouring county the demo's letters go to."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.collaboration.domain.letter_kinds import LetterKind
from services.collaboration.domain.network import parse_network
from services.collaboration.signing_keys import public_pem
from services.demo.county import DEMO_COUNTY_FILE
from services.demo.letters import LETTERS
from services.demo.network import (
    CITY_ID,
    DEMO_COUNTY,
    NEIGHBOUR_COUNTY,
    NEIGHBOUR_COUNTY_FILE,
    network_yaml,
)
from services.staffing.domain.county_file import parse_county


def test_the_dev_network_is_a_valid_file_of_two_counties_agreeing_on_every_kind() -> None:
    keys = {
        county: public_pem(Ed25519PrivateKey.generate())
        for county in (DEMO_COUNTY, NEIGHBOUR_COUNTY)
    }
    network, _ = parse_network(network_yaml(keys), read_calendar=lambda entry: "")
    assert [c.county_id for c in network.counties] == [DEMO_COUNTY, NEIGHBOUR_COUNTY]
    assert network.city_id == CITY_ID and network.version == 1
    assert all(network.covers(DEMO_COUNTY, NEIGHBOUR_COUNTY, kind) for kind in LetterKind)


def test_the_neighbour_is_its_own_county_with_the_townships_the_letters_name() -> None:
    demo = parse_county(DEMO_COUNTY_FILE.read_text(encoding="utf-8"))
    neighbour = parse_county(NEIGHBOUR_COUNTY_FILE.read_text(encoding="utf-8"))
    assert neighbour.county_id == NEIGHBOUR_COUNTY != demo.county_id
    ids = {z.zone_id for z in neighbour.zones} | {t.township_id for t in neighbour.townships}
    assert not ids & ({z.zone_id for z in demo.zones} | {t.township_id for t in demo.townships})
    named = {letter.subject_township for letter in LETTERS if letter.subject_township}
    assert named <= {t.township_id for t in neighbour.townships}
    # One letter is declined, the others accepted with findings to answer.
    assert sum(1 for letter in LETTERS if letter.decline_ground) == 1
    assert all(letter.findings for letter in LETTERS if not letter.decline_ground)
