"""Proto → domain values, checked once: a bad value becomes a field violation, never a crash.

Every servicer converts request fields through these helpers, so a Timestamp outside what
`datetime` holds, an enum number the schema does not know, an oversized id or a page token we
did not issue is refused with INVALID_ARGUMENT naming the field path, and nothing is changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from services.runtime.grpc.errors import ECHO_LIMIT, FieldViolation, InvalidArgument, shorten
from services.runtime.grpc.paging import decode_page_token, encode_page_token

# Seconds of 0001-01-01T00:00:00Z and of 9999-12-31T23:59:59Z (google.protobuf.Timestamp's range).
MIN_TIMESTAMP_SECONDS = -62_135_596_800
MAX_TIMESTAMP_SECONDS = 253_402_300_799
MAX_NANOS = 999_999_999
# Longest id or short text field we accept; ids are far shorter in practice.
MAX_ID_LENGTH = 256
# An offset carried in a page token never exceeds this (no list holds more rows).
MAX_OFFSET = 10**12


def timestamp_problem(stamp: Timestamp) -> str | None:
    """Why stamp is not a valid google.protobuf.Timestamp, or None if it is."""
    if not 0 <= stamp.nanos <= MAX_NANOS:
        return f"nanos must be 0..{MAX_NANOS}"
    if not MIN_TIMESTAMP_SECONDS <= stamp.seconds <= MAX_TIMESTAMP_SECONDS:
        return "must lie between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z"
    return None


def moment_or_violation(
    stamp: Timestamp, field: str, violations: list[FieldViolation]
) -> datetime | None:
    """stamp as an aware UTC datetime, or None after adding a violation for `field`."""
    problem = timestamp_problem(stamp)
    if problem is not None:
        violations.append(FieldViolation(field, problem))
        return None
    return stamp.ToDatetime(tzinfo=UTC)


def moment(stamp: Timestamp, field: str) -> datetime:
    """stamp as an aware UTC datetime; InvalidArgument naming `field` if it is not valid."""
    violations: list[FieldViolation] = []
    converted = moment_or_violation(stamp, field, violations)
    if converted is None:
        raise InvalidArgument(violations)
    return converted


def request_violations(message: object, prefix: str = "") -> list[FieldViolation]:
    """What no servicer may be handed, anywhere inside message: a Timestamp that is not valid,
    or text with a NUL character (PostgreSQL cannot store one; no id or name holds one)."""
    found: list[FieldViolation] = []
    list_fields = getattr(message, "ListFields", None)
    if list_fields is None:
        return found
    for descriptor, value in list_fields():
        path = f"{prefix}{descriptor.name}"
        is_text = descriptor.type == descriptor.TYPE_STRING
        if descriptor.message_type is not None and descriptor.message_type.GetOptions().map_entry:
            continue
        if descriptor.message_type is None and not is_text:
            continue
        items = value if descriptor.is_repeated else [value]
        for index, item in enumerate(items):
            where = f"{path}[{index}]" if descriptor.is_repeated else path
            if is_text:
                if "\x00" in item:
                    found.append(FieldViolation(where, "must not contain NUL characters"))
            elif isinstance(item, Timestamp):
                problem = timestamp_problem(item)
                if problem is not None:
                    found.append(FieldViolation(where, problem))
            else:
                found.extend(request_violations(item, f"{where}."))
    return found


def enum_number(
    defined: Iterable[int], number: int, field: str, violations: list[FieldViolation]
) -> bool:
    """Whether number is among an enum's `defined` values (`X.values()`); a violation if not."""
    if number in defined:
        return True
    violations.append(FieldViolation(field, f"{shorten(number)} is not a known value"))
    return False


def bounded_text(
    value: str,
    field: str,
    violations: list[FieldViolation],
    *,
    max_length: int = MAX_ID_LENGTH,
    required: bool = False,
) -> str:
    """value if it is within bounds; otherwise adds a violation for `field`."""
    if required and not value.strip():
        violations.append(FieldViolation(field, "is required"))
    elif len(value) > max_length:
        violations.append(FieldViolation(field, f"must be at most {max_length} characters"))
    return value


def page_size(
    size: int,
    violations: list[FieldViolation],
    *,
    maximum: int,
    default: int,
    field: str = "page_size",
) -> int:
    """The page size to use (default for 0); a violation when outside 0..maximum."""
    if not 0 <= size <= maximum:
        violations.append(FieldViolation(field, f"must be 0..{maximum}"))
        return default
    return size or default


def offset_token(offset: int, query: Mapping[str, object]) -> str:
    """An opaque token resuming a list at offset, valid only for this query."""
    return encode_page_token(str(offset), query)


def offset_from_token(
    token: str,
    query: Mapping[str, object],
    violations: list[FieldViolation],
    *,
    field: str = "page_token",
) -> int:
    """The offset of a token from offset_token() for this query; 0 and a violation otherwise."""
    if not token:
        return 0
    try:
        cursor = decode_page_token(token, query)
    except ValueError as refused:
        violations.append(FieldViolation(field, str(refused)))
        return 0
    if not cursor.isdigit() or len(cursor) > len(str(MAX_OFFSET)) or int(cursor) > MAX_OFFSET:
        violations.append(FieldViolation(field, "is not a token this service issued"))
        return 0
    return int(cursor)


__all__ = [
    "ECHO_LIMIT",
    "MAX_ID_LENGTH",
    "bounded_text",
    "enum_number",
    "moment",
    "moment_or_violation",
    "offset_from_token",
    "offset_token",
    "page_size",
    "request_violations",
    "shorten",
    "timestamp_problem",
]
