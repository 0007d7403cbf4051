"""examples/consumer without a broker: the tally rules and the KafkaUser an operator grants."""

from __future__ import annotations

import importlib.util
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import yaml

from services.contracts.registry import EVENT_TYPES
from services.runtime.envelope import Envelope

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "consumer"


def _example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("zone_tally", EXAMPLE / "zone_tally.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["zone_tally"] = module
    spec.loader.exec_module(module)
    return module


def _record(event_id: str, event_type: str, zone: str, **extra: object) -> tuple:
    payload = {"county_id": "c-1", "zone_id": zone, **extra}
    envelope = Envelope(
        id=event_id,
        type=event_type,
        source="xiezuo/intake",
        time=datetime(2026, 3, 9, tzinfo=UTC),
        county_id="c-1",
        zone_id=zone,
        data=json.dumps(payload).encode(),
    )
    return envelope.headers(), f"c-1:{zone}".encode(), envelope.data


def test_counts_each_event_once_per_zone_and_skips_other_types() -> None:
    zone_tally = _example()
    tally = zone_tally.Tally()
    records = [
        _record("e-1", "xiezuo.intake.clue_registered.v1", "z-1"),
        _record("e-1", "xiezuo.intake.clue_registered.v1", "z-1"),  # redelivered
        _record("e-2", "xiezuo.intake.clue_registered.v1", "z-2", added_later="ignored"),
        _record("e-3", "xiezuo.cases.deadline_breached.v1", "z-1"),
        _record("e-4", "xiezuo.intake.report_linked.v1", "z-1"),  # another type, same topic
        _record("e-5", "xiezuo.intake.clue_registered.v2", "z-1"),  # not understood yet
    ]
    for headers, key, value in records:
        zone_tally.apply(tally, headers, key, value)
    assert tally.zones == {
        "z-1": {"clues": 1, "deadlines_breached": 1},
        "z-2": {"clues": 1, "deadlines_breached": 0},
    }
    assert tally.unreadable == []


def test_an_unreadable_record_is_set_aside_with_its_reason(tmp_path: Path) -> None:
    zone_tally = _example()
    tally = zone_tally.Tally()
    headers, key, _ = _record("e-1", "xiezuo.intake.clue_registered.v1", "z-1")
    zone_tally.apply(tally, headers, key, b"{not json")
    zone_tally.apply(tally, [*headers, ("ce_subject", b"\xff\xfe")], key, b"{}")
    assert len(tally.unreadable) == 2 and tally.zones == {}
    tally.save(tmp_path / "t.json")
    assert zone_tally.Tally.load(tmp_path / "t.json").unreadable == tally.unreadable


def test_state_survives_a_restart_so_redelivery_after_it_counts_nothing(tmp_path: Path) -> None:
    zone_tally = _example()
    tally = zone_tally.Tally()
    zone_tally.apply(tally, *_record("e-1", "xiezuo.intake.clue_registered.v1", "z-1"))
    tally.save(tmp_path / "t.json")
    again = zone_tally.Tally.load(tmp_path / "t.json")
    zone_tally.apply(again, *_record("e-1", "xiezuo.intake.clue_registered.v1", "z-1"))
    assert again.zones == {"z-1": {"clues": 1, "deadlines_breached": 0}}


def test_the_kafka_user_reads_only_the_example_topics_and_its_own_groups() -> None:
    zone_tally = _example()
    user = yaml.safe_load((EXAMPLE / "kafkauser.yaml").read_text())
    assert user["kind"] == "KafkaUser"
    acls = user["spec"]["authorization"]["acls"]
    topics = {acl["resource"]["name"] for acl in acls if acl["resource"]["type"] == "topic"}
    assert topics == {zone_tally.CLUES_TOPIC, zone_tally.DEADLINES_TOPIC}
    assert topics <= {event.topic for event in EVENT_TYPES.values()}
    assert all(set(acl["operations"]) <= {"Read", "Describe"} for acl in acls)
    (group,) = [acl["resource"] for acl in acls if acl["resource"]["type"] == "group"]
    assert group["patternType"] == "prefix" and not group["name"].startswith("xiezuo")
    parser_default = "acme-dashboard.zone-tally"
    assert parser_default.startswith(group["name"])
    assert parser_default in (EXAMPLE / "zone_tally.py").read_text()
