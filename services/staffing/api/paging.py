"""List-call paging: page size bounds and page tokens bound to the query's scope."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeAlias, TypeVar

from services.runtime.grpc import conversion
from services.runtime.grpc.errors import FieldViolation, InvalidArgument
from services.staffing.api import convert

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500

# The two query values a token is bound to (a county or person, and what is listed).
Scope: TypeAlias = tuple[str, str]
Row = TypeVar("Row")
Cursor = TypeVar("Cursor")


def page_size(size: int, violations: list[FieldViolation]) -> int:
    """The page size to use (0 means the default); a violation when out of bounds."""
    return conversion.page_size(size, violations, maximum=MAX_PAGE_SIZE, default=DEFAULT_PAGE_SIZE)


def page_cursor(
    token: str, scope: Scope, violations: list[FieldViolation], parse: Callable[[str], Cursor]
) -> Cursor | None:
    """The parsed cursor a token resumes after (None on the first page or a bad token)."""
    if not token:
        return None
    try:
        return parse(convert.decode_token(token, *scope))
    except ValueError as exc:
        violations.append(FieldViolation("page_token", str(exc)))
        return None


def page_after(token: str, scope: Scope, violations: list[FieldViolation]) -> str:
    """The cursor a token resumes after, "" on the first page or a bad token."""
    return page_cursor(token, scope, violations, str) or ""


def page(size: int, token: str, scope: Scope) -> tuple[int, str]:
    """The page size and cursor of a list request; InvalidArgument when either is bad."""
    violations: list[FieldViolation] = []
    limit = page_size(size, violations)
    after = page_after(token, scope, violations)
    if violations:
        raise InvalidArgument(violations)
    return limit, after


def next_page(
    rows: Sequence[Row], limit: int, scope: Scope, cursor: Callable[[Row], str]
) -> tuple[list[Row], str]:
    """The page of rows (fetched as limit + 1) and the token of the next page, "" at the end."""
    if len(rows) <= limit:
        return list(rows), ""
    kept = list(rows[:limit])
    return kept, convert.encode_token(cursor(kept[-1]), *scope)
