"""An assistance letter's life on each side: the states and the steps allowed from each."""

from __future__ import annotations

import enum


class Direction(enum.StrEnum):
    """Which side of the letter a county's row is."""

    OUTBOUND = "outbound"  # this county asked
    INBOUND = "inbound"  # this county was asked


class LetterState(enum.StrEnum):
    """Where a letter stands (the same words on both sides)."""

    AWAITING_APPROVAL = "awaiting_approval"
    SENT = "sent"  # approved and signed; outbound only
    RECEIVED = "received"  # verified at the receiver; inbound only
    ACCEPTED = "accepted"
    DECLINED = "declined"
    ANSWERED = "answered"


class Step(enum.StrEnum):
    """What a person or a verified record does to a letter."""

    APPROVE = "approve"
    ACCEPT = "accept"
    DECLINE = "decline"
    ANSWER = "answer"


# (side, state) → steps allowed from it. Accept/decline/answer arrive on the outbound side as
# the other county's verified records; on the inbound side they are this county's decisions.
_ALLOWED: dict[tuple[Direction, LetterState], frozenset[Step]] = {
    (Direction.OUTBOUND, LetterState.AWAITING_APPROVAL): frozenset({Step.APPROVE}),
    (Direction.OUTBOUND, LetterState.SENT): frozenset({Step.ACCEPT, Step.DECLINE}),
    (Direction.OUTBOUND, LetterState.ACCEPTED): frozenset({Step.ANSWER}),
    (Direction.INBOUND, LetterState.RECEIVED): frozenset({Step.ACCEPT, Step.DECLINE}),
    (Direction.INBOUND, LetterState.ACCEPTED): frozenset({Step.ANSWER}),
}
_AFTER = {
    Step.APPROVE: LetterState.SENT,
    Step.ACCEPT: LetterState.ACCEPTED,
    Step.DECLINE: LetterState.DECLINED,
    Step.ANSWER: LetterState.ANSWERED,
}


class StepRefused(Exception):
    """The step is not allowed from the letter's state."""


def next_state(direction: Direction, state: LetterState, step: Step) -> LetterState:
    """The state after `step`, or StepRefused saying why not."""
    if step not in _ALLOWED.get((direction, state), frozenset()):
        raise StepRefused(f"cannot {step.value} a {direction.value} letter that is {state.value}")
    return _AFTER[step]
