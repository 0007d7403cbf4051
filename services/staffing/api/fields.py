"""Request-field checks shared by the staffing servicers, as field violations."""

from __future__ import annotations

from datetime import date

from services.runtime.grpc.errors import FieldViolation, InvalidArgument
from services.staffing.api import convert


def missing(**fields: str) -> list[FieldViolation]:
    """A violation for each required field left empty, in the order given."""
    return [FieldViolation(name, "is required") for name, value in fields.items() if not value]


def require(**fields: str) -> None:
    """InvalidArgument when any required field is empty."""
    violations = missing(**fields)
    if violations:
        raise InvalidArgument(violations)


def day(text: str, name: str, violations: list[FieldViolation]) -> date | None:
    """A YYYY-MM-DD field as a date; None and a violation when it is not one."""
    try:
        return convert.parse_day(text)
    except ValueError:
        violations.append(FieldViolation(name, "must be a date YYYY-MM-DD"))
        return None
