"""The published language: every contract is named, versioned and routable."""

from __future__ import annotations

import re

from services.contracts.registry import EVENT_TYPES
from services.runtime.settings import SERVICES, STANDALONE_SERVICES

TYPE_NAME = re.compile(r"^xiezuo\.(?P<service>[a-z]+)\.[a-z][a-z0-9_]*\.v[1-9][0-9]*$")


def test_the_slice_event_is_registered() -> None:
    assert "xiezuo.intake.clue_registered.v1" in EVENT_TYPES


def test_every_event_type_is_versioned_and_owned_by_a_service() -> None:
    for name, event in EVENT_TYPES.items():
        match = TYPE_NAME.match(name)
        assert match, f"{name} is not xiezuo.<service>.<event>.v<N>"
        # `audit` is the platform's own: every service publishes its audit checkpoints there.
        assert match["service"] in (*SERVICES, *STANDALONE_SERVICES, "audit"), name
        assert event.topic.startswith(f"xiezuo.{match['service']}."), (name, event.topic)


def test_every_event_carries_its_tenancy() -> None:
    for name, event in EVENT_TYPES.items():
        fields = event.model_fields
        assert {"county_id", "zone_id"} <= set(fields), name
