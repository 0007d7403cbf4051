"""Event schemas a consumer can fetch: one per type, named by `ce_dataschema`, open to additions."""

from __future__ import annotations

import json
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import jsonschema

from services.contracts.intake import ClueRegistered, ReportedSubject
from services.contracts.registry import EVENT_TYPES
from services.contracts.staffing import TeamAssigned, TeamMember
from services.runtime.envelope import DATASCHEMA_PREFIX, Envelope, schema_uri

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import check_links  # noqa: E402
import gen_event_schemas  # noqa: E402

sys.path.remove(str(ROOT / "tools"))


def _schema_file(dataschema: str) -> Path:
    assert dataschema.startswith(DATASCHEMA_PREFIX.split("schemas/")[0])
    return ROOT / dataschema.removeprefix("xiezuo:")


def test_every_event_type_has_a_schema_file_named_by_its_dataschema() -> None:
    for event_type in EVENT_TYPES:
        uri = schema_uri(event_type)
        assert uri == gen_event_schemas.schema_uri(event_type)
        schema = json.loads(_schema_file(uri).read_text())
        assert schema["$id"] == uri
        assert schema["title"] == event_type
        jsonschema.Draft202012Validator.check_schema(schema)


def test_the_checked_in_schemas_are_current() -> None:
    assert gen_event_schemas.stale() == []


def _validate(event_type: str, payload: bytes) -> None:
    envelope = Envelope(
        id="e-1",
        type=event_type,
        source="xiezuo-test",
        time=datetime(2026, 3, 9, tzinfo=UTC),
        county_id="c-001",
        zone_id="z-01",
        data=payload,
    )
    dataschema = dict(envelope.headers())["ce_dataschema"].decode()
    schema = json.loads(_schema_file(dataschema).read_text())
    jsonschema.validate(json.loads(payload), schema, cls=jsonschema.Draft202012Validator)


def test_published_payloads_validate_and_so_do_payloads_with_an_added_field() -> None:
    clue = ClueRegistered(
        county_id="c-001",
        zone_id="z-01",
        clue_id="k-1",
        report_id="r-1",
        township_id="t-1",
        channel="letter",
        allegation_categories=["misuse_of_funds"],
        subject=ReportedSubject(
            name="某某", post="村支书", unit="某村", township_id="t-1", cadre_level="village"
        ),
        real_name=False,
        received_at=datetime(2026, 3, 9, 8, tzinfo=UTC),
        registered_at=datetime(2026, 3, 9, 9, tzinfo=UTC),
        priority=40,
    )
    team = TeamAssigned(
        county_id="c-001",
        zone_id="z-01",
        request_id="r-1",
        case_id="case-1",
        stage="verification",
        draw_id="d-1",
        members=[TeamMember(person_id="p-1", home_township_id="t-2", leader=True)],
        assigned_at=datetime(2026, 3, 9, tzinfo=UTC),
    )
    for event in (clue, team):
        payload = event.model_dump_json().encode()
        _validate(event.event_type, payload)
        newer = json.loads(payload) | {"added_in_a_later_release": date(2026, 4, 1).isoformat()}
        _validate(event.event_type, json.dumps(newer).encode())


def test_every_relative_link_in_readme_and_docs_resolves() -> None:
    broken = {
        str(page.relative_to(ROOT)): check_links.broken_links(page) for page in check_links.pages()
    }
    assert {page: links for page, links in broken.items() if links} == {}


def test_a_type_with_its_own_kafka_key_states_it_and_the_registry_is_keyed_by_county() -> None:
    from services.contracts.base import IntegrationEvent
    from services.contracts.staffing import TownshipPlaced

    for name, event in EVENT_TYPES.items():
        own_key = event.partition_key is not IntegrationEvent.partition_key
        assert own_key == (event.key_pattern != IntegrationEvent.key_pattern), name
    placed = TownshipPlaced(
        county_id="c-001",
        zone_id="z-01",
        township_id="t-1",
        township_name="甲镇",
        effective_from=date(2026, 1, 1),
    )
    assert (TownshipPlaced.key_pattern, placed.partition_key()) == ("<county_id>", "c-001")


def test_the_link_check_finds_links_outside_the_repo_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "here.md").write_text("x")
    page = tmp_path / "README.md"
    page.write_text(
        "[ok](docs/here.md) [gone](docs/gone.md) `../shared/DOMAIN.md` "
        "[web](https://example.org/x) [anchor](#top)\n\n[ref]: ../outside.md\n"
        "```\n[in a fence](nowhere.md)\n```\n"
    )
    assert check_links.broken_links(page, tmp_path) == [
        "docs/gone.md",
        "../outside.md",
        "../shared/DOMAIN.md",
    ]


def test_the_consumer_guide_names_each_topics_key_as_the_contracts_do() -> None:
    table: dict[str, str] = {}
    for line in (ROOT / "docs" / "consumers.md").read_text().splitlines():
        cells = [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("xiezuo.") and "<" not in cells[0]:
            table[cells[0]] = cells[2]
    keys: dict[str, set[str]] = {}
    for event in EVENT_TYPES.values():
        keys.setdefault(event.topic, set()).add(event.key_pattern)
    assert {topic: {key} for topic, key in table.items()} == keys
