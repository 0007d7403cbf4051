"""A letter-channel submission for intake's store tests, varied by key, township and name."""

from __future__ import annotations

from datetime import UTC, datetime

from services.intake.domain.kinds import CadreLevel, Channel
from services.intake.domain.report import Subject, Submission

RECEIVED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def letter_submission(key: str, *, township: str = "t1", name: str = "Li Si") -> Submission:
    """An anonymous letter about a village secretary in county c1, zone z1."""
    return Submission(
        idempotency_key=key,
        county_id="c1",
        zone_id="z1",
        township_id=township,
        channel=Channel.LETTER,
        subject=Subject(name, "secretary", "Hexi committee", township, "", CadreLevel.VILLAGE),
        allegation_categories=("embezzlement",),
        content="Subsidies paid to relatives.",
        reporter=None,
        campaign_id=None,
        received_at=RECEIVED,
    )
