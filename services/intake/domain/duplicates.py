"""Duplicate reports (重复举报): one fingerprint within a window joins the existing clue."""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.intake.domain.report import Submission


@dataclass(frozen=True)
class DuplicateProfile:
    """What duplicates are judged on: normalised subject, unit, place and categories."""

    county_id: str
    subject_name: str
    subject_unit: str
    township_id: str
    categories: frozenset[str]
    received_at: datetime

    @property
    def fingerprint(self) -> str:
        """Digest of everything an exact repeat shares."""
        parts = (
            self.county_id,
            self.subject_name,
            self.subject_unit,
            self.township_id,
            ",".join(sorted(self.categories)),
        )
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


@dataclass(frozen=True)
class KnownReport:
    """An earlier report that registered or joined a clue."""

    report_id: str
    clue_id: str
    profile: DuplicateProfile


@dataclass(frozen=True)
class Linked:
    """An exact repeat inside the window: the report joins `clue_id`."""

    clue_id: str
    report_id: str


@dataclass(frozen=True)
class Similar:
    """A near-duplicate for an officer to decide; the report opens its own clue meanwhile."""

    clue_id: str
    report_id: str
    reason: str


@dataclass(frozen=True)
class DuplicateRules:
    """The window and how similar a name must be to flag a near-duplicate."""

    window_days: int
    near_name_max_edits: int


def normalise(text: str) -> str:
    """Width, case, spaces and punctuation do not make a different person or unit."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in folded if ch.isalnum())


def profile_of(submission: Submission, *, received_at: datetime) -> DuplicateProfile:
    """The duplicate profile of a valid submission."""
    subject = submission.subject
    assert subject is not None
    return DuplicateProfile(
        county_id=submission.county_id,
        subject_name=normalise(subject.name),
        subject_unit=normalise(subject.unit),
        township_id=submission.township_id,
        categories=frozenset(submission.allegation_categories),
        received_at=received_at,
    )


def within_window(a: datetime, b: datetime, rules: DuplicateRules) -> bool:
    """Whether two receptions are at most the window apart (either order)."""
    return abs(a - b) <= timedelta(days=rules.window_days)


def edit_distance(a: str, b: str, *, limit: int) -> int:
    """Levenshtein distance, stopping early once it exceeds `limit` (returns limit + 1)."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous = list(range(len(b) + 1))
    for i, left in enumerate(a, start=1):
        current = [i]
        for j, right in enumerate(b, start=1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (left != right))
            )
        if min(current) > limit:
            return limit + 1
        previous = current
    return min(previous[-1], limit + 1)


def similarity(new: DuplicateProfile, old: DuplicateProfile, rules: DuplicateRules) -> str | None:
    """Why two non-identical profiles look like the same matter, or None."""
    if new.county_id != old.county_id or new.township_id != old.township_id:
        return None
    if new.subject_name == old.subject_name:
        if new.categories != old.categories:
            return "same subject and township, different allegation categories"
        return "same subject, township and categories, different unit"
    distance = edit_distance(new.subject_name, old.subject_name, limit=rules.near_name_max_edits)
    if distance <= rules.near_name_max_edits:
        return f"subject name differs by {distance} edit(s) in the same township"
    return None


def classify(
    new: DuplicateProfile, known: Sequence[KnownReport], rules: DuplicateRules
) -> Linked | list[Similar]:
    """Link to the clue of the latest exact repeat in the window, else list near-duplicates."""
    in_window = [k for k in known if within_window(new.received_at, k.profile.received_at, rules)]
    exact = [k for k in in_window if k.profile.fingerprint == new.fingerprint]
    if exact:
        latest = max(exact, key=lambda k: k.profile.received_at)
        return Linked(latest.clue_id, latest.report_id)
    similar: dict[str, Similar] = {}
    for earlier in sorted(in_window, key=lambda k: k.profile.received_at, reverse=True):
        reason = similarity(new, earlier.profile, rules)
        if reason is not None and earlier.clue_id not in similar:
            similar[earlier.clue_id] = Similar(earlier.clue_id, earlier.report_id, reason)
    return list(similar.values())


# How many edits the stored match keys cover: each report is stored under its name and every
# one-deletion variant of it, so two names within one edit always share a key.
INDEXED_EDITS = 1


def _variants(name: str, edits: int) -> set[str]:
    variants = {name}
    if edits >= 1:
        variants |= {name[:index] + name[index + 1 :] for index in range(len(name))}
    return variants


def _match_key(county_id: str, township_id: str, variant: str) -> str:
    return hashlib.sha256("\x1f".join((county_id, township_id, variant)).encode()).hexdigest()[:32]


def stored_match_keys(profile: DuplicateProfile) -> frozenset[str]:
    """Keys a report is stored under for duplicate matching (its township, name variants)."""
    return frozenset(
        _match_key(profile.county_id, profile.township_id, variant)
        for variant in _variants(profile.subject_name, INDEXED_EDITS)
    )


def lookup_match_keys(profile: DuplicateProfile, rules: DuplicateRules) -> frozenset[str] | None:
    """Keys that find every stored report `classify` could link or flag; None if no key can.

    An exact repeat or a same-name report shares the name itself; a name one edit away shares
    a one-deletion variant (a deletion from either side, or the same position of a
    substitution). Rules allowing more edits than the keys cover need a full scan (None).
    """
    if rules.near_name_max_edits > INDEXED_EDITS:
        return None
    return frozenset(
        _match_key(profile.county_id, profile.township_id, variant)
        for variant in _variants(profile.subject_name, rules.near_name_max_edits)
    )


def raised_priority(current: int, *, per_repeat: int, cap: int) -> int:
    """A repeated report makes its clue more urgent, up to the rules' cap."""
    return min(current + per_repeat, cap, 100)
