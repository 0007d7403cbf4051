"""ActOnCase requests as domain commands, with their idempotency digest."""

from __future__ import annotations

import hashlib

from xiezuo.cases.v1 import cases_pb2

from services.cases.domain.casefile import Command, Meeting, Sanction
from services.runtime.grpc.errors import FieldViolation, InvalidArgument

MAX_KEY_LENGTH = 128
MAX_DAYS = 3650
TRACKS = ("party", "government")


def command_of(request: cases_pb2.ActOnCaseRequest) -> Command:
    """The domain command a request asks for; INVALID_ARGUMENT for a malformed request."""
    violations = []
    if not request.idempotency_key:
        violations.append(FieldViolation("idempotency_key", "is required"))
    elif len(request.idempotency_key) > MAX_KEY_LENGTH:
        violations.append(FieldViolation("idempotency_key", f"at most {MAX_KEY_LENGTH} chars"))
    if not request.case_id:
        violations.append(FieldViolation("case_id", "is required"))
    if not request.action:
        violations.append(FieldViolation("action", "is required"))
    if not 0 <= request.days <= MAX_DAYS:
        violations.append(FieldViolation("days", f"must be 0..{MAX_DAYS}"))
    for index, sanction in enumerate(request.sanctions):
        if sanction.track not in TRACKS:
            violations.append(FieldViolation(f"sanctions[{index}].track", f"one of {TRACKS}"))
    meeting = None
    if request.HasField("meeting"):
        m = request.meeting
        if m.votes_for < 0 or m.votes_against < 0:
            violations.append(FieldViolation("meeting.votes_for", "votes are counts ≥ 0"))
        meeting = Meeting(
            body=m.body,
            minutes_ref=m.minutes_ref.strip(),
            members=tuple(m.members),
            present=tuple(m.present),
            votes_for=m.votes_for,
            votes_against=m.votes_against,
        )
    if violations:
        raise InvalidArgument(violations)
    return Command(
        action=request.action,
        choice=request.choice,
        days=request.days,
        description=request.description,
        sha256=request.sha256,
        sanctions=tuple(Sanction(s.track, s.kind) for s in request.sanctions),
        reason=request.reason.strip(),
        decision=request.decision,
        meeting=meeting,
        measures=tuple(request.organisational_measures),
    )


def digest_of(request: cases_pb2.ActOnCaseRequest, actor: str) -> str:
    """What a retry must repeat exactly: the same caller sending the same request."""
    body = request.SerializeToString(deterministic=True)
    return hashlib.sha256(actor.encode() + b"\x1f" + body).hexdigest()
