"""Hypothesis strategies that build any request message from its proto descriptor.

Values mix what a real caller sends (known ids, quarters, dates, defined enum numbers) with
what a hostile or buggy one does (unknown enum numbers, integer extremes, NaN, out-of-range
Timestamps, long and odd text), so calls reach deep into the servicers as well as their edges.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
UINT32 = (0, 2**32 - 1)
UINT64 = (0, 2**64 - 1)
_RANGES = {
    FieldDescriptor.TYPE_INT32: INT32,
    FieldDescriptor.TYPE_SINT32: INT32,
    FieldDescriptor.TYPE_SFIXED32: INT32,
    FieldDescriptor.TYPE_INT64: INT64,
    FieldDescriptor.TYPE_SINT64: INT64,
    FieldDescriptor.TYPE_SFIXED64: INT64,
    FieldDescriptor.TYPE_UINT32: UINT32,
    FieldDescriptor.TYPE_FIXED32: UINT32,
    FieldDescriptor.TYPE_UINT64: UINT64,
    FieldDescriptor.TYPE_FIXED64: UINT64,
}
# Timestamp seconds of 0001-01-01 and 9999-12-31T23:59:59, the valid range's ends.
FIRST_SECOND, LAST_SECOND = -62_135_596_800, 253_402_300_799
RECENT = (1_767_225_600, 1_798_761_599)  # 2026
ODD_TEXT = st.sampled_from(
    ["", " ", "\x00", "‮", "'; DROP TABLE x; --", "%s%n", "../..", "9" * 100, "x" * 300]
)


class RequestStrategies:
    """Builds strategies for request messages, drawing ids from `known` values.

    `plausible` ones look like a real caller's (known ids, defined enums, recent times, small
    numbers) and reach the domain; the others also carry hostile values.
    """

    def __init__(
        self,
        known: Sequence[str],
        *,
        pools: Mapping[str, Sequence[str]] | None = None,
        plausible: bool = False,
    ) -> None:
        self._plausible = plausible
        self._pools = {part: st.sampled_from(list(v)) for part, v in (pools or {}).items()}
        self._known = st.sampled_from(list(known))
        self._fresh = st.uuids().map(str)
        if plausible:
            self._text = self._known
        else:
            self._text = st.one_of(
                self._known, self._known, self._known, st.text(max_size=24), ODD_TEXT
            )

    def message(self, descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy[Message]:
        """Any message of this type: each field left unset or drawn, recursively."""
        cls = message_factory.GetMessageClass(descriptor)
        if descriptor.full_name == "google.protobuf.Timestamp":
            return self.timestamp(cls)
        # Scalars are always drawn (their strategies include the zero value), so most calls
        # get past "is required"; messages and lists are sometimes left out.
        scalars = {
            field.name: self._field(field, depth)
            for field in descriptor.fields
            if field.message_type is None and not field.is_repeated
        }
        others = {
            field.name: self._field(field, depth)
            for field in descriptor.fields
            if (field.message_type is not None or field.is_repeated)
            and (depth < 3 or field.message_type is None)
        }
        return st.fixed_dictionaries(scalars, optional=others).map(
            lambda values: _build(cls, values)
        )

    def timestamp(self, cls: Any) -> st.SearchStrategy[Message]:
        """Mostly plausible moments, sometimes ones outside what a Timestamp may hold."""
        if self._plausible:
            return st.builds(lambda s: cls(seconds=s), st.integers(*RECENT))
        seconds = st.one_of(
            st.integers(*RECENT),
            st.integers(*RECENT),
            st.sampled_from([0, FIRST_SECOND, LAST_SECOND, FIRST_SECOND - 1, LAST_SECOND + 1]),
            st.integers(*INT64),
        )
        nanos = st.one_of(
            st.just(0),
            st.integers(0, 999_999_999),
            st.sampled_from([-1, 1_000_000_000, INT32[0], INT32[1]]),
        )
        return st.builds(lambda s, n: cls(seconds=s, nanos=n), seconds, nanos)

    def _field(self, field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
        single = self._single(field, depth)
        if field.is_repeated:
            return st.lists(single, max_size=3)
        return single

    def _single(self, field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
        kind = field.type
        if kind == FieldDescriptor.TYPE_MESSAGE:
            assert field.message_type is not None
            return self.message(field.message_type, depth + 1)
        if kind == FieldDescriptor.TYPE_ENUM:
            assert field.enum_type is not None
            defined = [value.number for value in field.enum_type.values]
            if self._plausible:
                return st.sampled_from(defined[1:] or defined)
            return st.one_of(
                st.sampled_from(defined), st.sampled_from(defined), st.integers(-3, 1000)
            )
        if kind == FieldDescriptor.TYPE_STRING:
            return self._string(field.name)
        if kind == FieldDescriptor.TYPE_BYTES:
            return st.binary(max_size=64)
        if kind == FieldDescriptor.TYPE_BOOL:
            return st.booleans()
        if self._plausible:
            if field.name == "year":
                return st.integers(2025, 2027)
            return st.integers(0, 30)
        if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
            floats = st.floats(width=32) if kind == FieldDescriptor.TYPE_FLOAT else st.floats()
            return st.one_of(st.floats(-10, 200), floats)
        low, high = _RANGES[kind]
        return st.one_of(
            st.integers(0, 60),
            st.integers(-2, 500),
            st.sampled_from([low, high, -1]).filter(lambda n: low <= n <= high),
            st.integers(low, high),
        )

    def _string(self, name: str) -> st.SearchStrategy[str]:
        """Values for a string field, by what its name says it holds."""
        if self._plausible and "idempotency" in name:
            return self._fresh
        pool = next((values for part, values in self._pools.items() if part in name), None)
        if pool is None:
            return self._text
        return pool if self._plausible else st.one_of(pool, self._text)


def undefined_enums(message: Message, prefix: str = "") -> list[str]:
    """Paths of enum fields anywhere in message set to a number their enum does not define."""
    found: list[str] = []
    for field, value in message.ListFields():
        path = f"{prefix}{field.name}"
        if field.enum_type is not None:
            defined = {v.number for v in field.enum_type.values}
            values = value if field.is_repeated else [value]
            found += [path for number in values if number not in defined]
        elif field.message_type is not None and not field.message_type.GetOptions().map_entry:
            for item in value if field.is_repeated else [value]:
                found += undefined_enums(item, f"{path}.")
    return found


def _build(cls: Any, values: dict[str, Any]) -> Message:
    """The message with `values` set (later oneof members win, as on the wire)."""
    message = cls()
    for name, value in values.items():
        field = cls.DESCRIPTOR.fields_by_name[name]
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            if field.is_repeated:
                getattr(message, name).extend(value)
            else:
                getattr(message, name).CopyFrom(value)
        elif field.is_repeated:
            getattr(message, name).extend(value)
        else:
            setattr(message, name, value)
    return message
