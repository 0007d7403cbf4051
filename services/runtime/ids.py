"""Identifiers that sort by the time they were made: UUID version 7 (RFC 9562).

A report's, clue's or event's id is the key of several indexes in every service that stores
it (the row itself, the inbox, the audit trail's record index). Random ids (version 4) put
each new row on a random page of each of those B-trees: at a consumer's batch of 500 clues
almost every row dirtied a page of its own, which SQLite then wrote to its log and copied
back. Ids that begin with the time land at the right-hand end instead: SQLite's own work for
cases' five inserts and commit per clue went from 57 to 24 µs (`bench/sqlite_inserts.py`).

What this gives away: the id tells its creation time to the millisecond, which every row and
event carrying it states anyway (`registered_at`, `ce_time`). 74 random bits are left, so
ids are still not guessable; nothing is authorised by knowing one.
"""

from __future__ import annotations

import os
import time
import uuid

_MS_BITS = 48
_RAND_A_BITS = 12
_RAND_B_BITS = 62


def time_ordered_uuid(*, at_ms: int | None = None, random_bits: int | None = None) -> uuid.UUID:
    """A version 7 UUID: Unix milliseconds (`at_ms`, else now), then 74 random bits.

    `random_bits` (its low 74 bits) makes the random part reproducible, for synthetic data;
    by default it comes from the operating system, as `uuid4`'s does.
    """
    ms = time.time_ns() // 1_000_000 if at_ms is None else at_ms
    if not 0 <= ms < 1 << _MS_BITS:
        raise ValueError(f"{ms} ms does not fit a version 7 UUID")
    if random_bits is None:
        random_bits = int.from_bytes(os.urandom(10), "big")
    rand_a = random_bits >> _RAND_B_BITS & ((1 << _RAND_A_BITS) - 1)
    rand_b = random_bits & ((1 << _RAND_B_BITS) - 1)
    # unix_ts_ms | ver (0111) | rand_a | var (10) | rand_b
    value = ms << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    return uuid.UUID(int=value)
