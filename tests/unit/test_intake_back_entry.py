"""Back-entry (补录) rules: the shared check, and what a back-dated submission changes."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.intake.domain.kinds import CadreLevel, Channel
from services.intake.domain.report import Subject, Submission, fingerprint
from services.runtime.backentry import BACK_ENTRY_ROLE, CLOCK_SKEW, check_back_entry
from services.runtime.grpc.errors import InvalidArgument, PermissionDenied
from services.runtime.tokens import Principal

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CLERK = Principal(subject="clerk", roles=frozenset({"intake_officer", BACK_ENTRY_ROLE}))
OFFICER = Principal(subject="officer", roles=frozenset({"intake_officer"}))
SUBMISSION = Submission(
    idempotency_key="k1",
    county_id="c1",
    zone_id="z1",
    township_id="t1",
    channel=Channel.LETTER,
    subject=Subject("Li", "secretary", "Hexi committee", "t1", "", CadreLevel.VILLAGE),
    allegation_categories=("embezzlement",),
    content="Subsidies paid to relatives.",
    reporter=None,
    campaign_id=None,
)


def _violations(
    effective_at: datetime,
    *,
    field: str,
    not_before: datetime | None = None,
    not_before_what: str = "",
) -> list[tuple[str, str]]:
    with pytest.raises(InvalidArgument) as refused:
        check_back_entry(
            CLERK,
            effective_at,
            now=NOW,
            window_days=400,
            not_before=not_before,
            not_before_what=not_before_what,
            field=field,
        )
    return [(v.field, v.description) for v in refused.value.violations]


def test_a_moment_within_the_window_and_after_not_before_passes() -> None:
    check_back_entry(CLERK, NOW - timedelta(days=400), now=NOW, window_days=400)
    check_back_entry(
        CLERK,
        NOW - timedelta(days=3),
        now=NOW,
        window_days=400,
        not_before=NOW - timedelta(days=3),
        not_before_what="received_at",
    )
    # A caller's clock running a little ahead is still "now".
    check_back_entry(CLERK, NOW + CLOCK_SKEW, now=NOW, window_days=400)


def test_without_the_role_even_a_valid_moment_is_denied() -> None:
    with pytest.raises(PermissionDenied):
        check_back_entry(OFFICER, NOW - timedelta(days=1), now=NOW, window_days=400)
    # The role is checked before the moment: no hint about what would have been accepted.
    with pytest.raises(PermissionDenied):
        check_back_entry(OFFICER, NOW + timedelta(days=1), now=NOW, window_days=400)


def test_impossible_moments_are_field_violations_of_the_named_field() -> None:
    future = _violations(NOW + CLOCK_SKEW + timedelta(seconds=1), field="x")
    assert future == [("x", "must not be in the future")]
    too_old = _violations(NOW - timedelta(days=401), field="x")
    assert too_old == [("x", "must be within the back-entry window of 400 days")]
    early = _violations(
        NOW - timedelta(days=5),
        not_before=NOW - timedelta(days=4),
        not_before_what="received_at",
        field="registered_at",
    )
    assert [field for field, _ in early] == ["registered_at"]
    assert "received_at" in early[0][1]


def test_the_registration_moment_counts_in_the_fingerprint_only_when_given() -> None:
    moment = NOW - timedelta(days=9)
    back = replace(SUBMISSION, registered_at=moment)
    assert fingerprint(back) != fingerprint(SUBMISSION)
    assert fingerprint(back) != fingerprint(replace(back, registered_at=moment + timedelta(days=1)))
    # The same moment written in Beijing time is the same request.
    beijing = moment.astimezone(timezone(timedelta(hours=8)))
    assert fingerprint(replace(back, registered_at=beijing)) == fingerprint(back)


def test_received_falls_back_to_the_registration_moment_then_now() -> None:
    assert SUBMISSION.received_on(NOW) == NOW
    back = replace(SUBMISSION, registered_at=NOW - timedelta(days=9))
    assert back.received_on(NOW) == NOW - timedelta(days=9)
    given = replace(back, received_at=NOW - timedelta(days=10))
    assert given.received_on(NOW) == NOW - timedelta(days=10)
