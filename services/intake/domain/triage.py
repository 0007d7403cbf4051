"""Triage score (0-100) from configurable weights: what makes a report urgent to handle."""

from __future__ import annotations

from dataclasses import dataclass

from services.intake.domain.kinds import CadreLevel
from services.intake.domain.report import Submission
from services.intake.domain.rules import TriageWeights


@dataclass(frozen=True)
class TriageSignals:
    """The facts triage weighs, taken from a submission."""

    real_name: bool
    specific_subject: bool
    evidence_attached: bool
    repeats: int
    campaign: bool


def signals_of(submission: Submission, *, repeats: int = 0) -> TriageSignals:
    """Read the signals off a valid submission."""
    subject = submission.subject
    specific = (
        subject is not None
        and bool(subject.name.strip() and subject.post.strip() and subject.unit.strip())
        and subject.cadre_level is not CadreLevel.UNKNOWN
    )
    return TriageSignals(
        real_name=submission.reporter is not None,
        specific_subject=specific,
        evidence_attached=bool(submission.attachments),
        repeats=repeats,
        campaign=submission.campaign_id is not None,
    )


def triage_score(signals: TriageSignals, weights: TriageWeights) -> int:
    """Base plus each signal's weight, capped at the rules' maximum."""
    score = weights.base
    score += weights.real_name if signals.real_name else 0
    score += weights.specific_subject if signals.specific_subject else 0
    score += weights.evidence_attached if signals.evidence_attached else 0
    score += weights.campaign_domain if signals.campaign else 0
    score += weights.per_repeat * signals.repeats
    return min(score, weights.max, 100)
