"""Time-ordered ids (UUID version 7) for reports, clues and events."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime

import pytest

from services.assessment.synthetic import synthetic_events
from services.runtime.ids import time_ordered_uuid


def test_an_id_is_a_version_7_uuid_that_begins_with_its_millisecond() -> None:
    before = int(datetime.now(UTC).timestamp() * 1000)
    made = time_ordered_uuid()
    after = int(datetime.now(UTC).timestamp() * 1000)
    assert (made.version, made.variant) == (7, uuid.RFC_4122)
    assert before <= made.int >> 80 <= after
    # Read back by any UUID parser, in the text form events carry.
    assert uuid.UUID(str(made)) == made


def test_ids_of_later_milliseconds_sort_after_in_their_text_forms() -> None:
    ids = [time_ordered_uuid(at_ms=1_700_000_000_000 + n) for n in range(0, 5_000, 7)]
    assert [str(i) for i in ids] == sorted(str(i) for i in ids)
    assert [i.hex for i in ids] == sorted(i.hex for i in ids)


def test_ids_of_one_millisecond_differ_in_74_random_bits() -> None:
    ids = {time_ordered_uuid(at_ms=1_700_000_000_000) for _ in range(20_000)}
    assert len(ids) == 20_000
    # Every random bit is used: some id has it set and some has it clear.
    random_mask = (1 << 12) - 1 << 64 | (1 << 62) - 1
    assert all(i.int & random_mask for i in ids)
    union = 0
    for made in ids:
        union |= made.int & random_mask
    assert union == random_mask


def test_given_random_bits_make_the_same_id() -> None:
    bits = random.Random(3).getrandbits(128)
    one = time_ordered_uuid(at_ms=42, random_bits=bits)
    assert one == time_ordered_uuid(at_ms=42, random_bits=bits)
    assert one.int >> 80 == 42 and one.version == 7


@pytest.mark.parametrize("at_ms", [-1, 1 << 48])
def test_a_moment_outside_48_bits_is_refused(at_ms: int) -> None:
    with pytest.raises(ValueError, match="does not fit"):
        time_ordered_uuid(at_ms=at_ms)


def test_synthetic_events_keep_their_seed_and_are_minted_in_order() -> None:
    first = [item.event_id for item in synthetic_events(50, seed=9)]
    assert first == [item.event_id for item in synthetic_events(50, seed=9)]
    assert first == sorted(first)
    assert {uuid.UUID(event_id).version for event_id in first} == {7}
