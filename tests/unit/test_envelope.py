"""CloudEvents 1.0 binary-mode envelopes: headers out, headers in, and what is rejected."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.runtime.envelope import REQUIRED, Envelope, EnvelopeError, format_time, parse_time

RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$")
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def _envelope(**changes: object) -> Envelope:
    fields: dict[str, object] = {
        "id": "5b0f6c1e-8d7e-4d8a-9a43-4c1b8f0c2a11",
        "type": "xiezuo.intake.clue_registered.v1",
        "source": "xiezuo-intake",
        "time": datetime(2026, 3, 9, 8, 30, 15, 123456, tzinfo=UTC),
        "county_id": "c-001",
        "zone_id": "z-01",
        "data": '{"clue_id": "线索-1"}'.encode(),
        "subject": "线索-1",
        "traceparent": TRACEPARENT,
        "tracestate": "xiezuo=1",
    }
    fields.update(changes)
    return Envelope(**fields)  # type: ignore[arg-type]


def _headers(envelope: Envelope, **replace: bytes | None) -> list[tuple[str, bytes]]:
    """The envelope's headers with some replaced (value) or dropped (None)."""
    out = []
    for name, value in envelope.headers():
        if name in replace:
            if replace[name] is None:
                continue
            value = replace[name]  # type: ignore[assignment]
        out.append((name, value))
    return out


def test_headers_are_cloudevents_binary_mode() -> None:
    headers = dict(_envelope().headers())
    assert headers == {
        "ce_specversion": b"1.0",
        "ce_id": b"5b0f6c1e-8d7e-4d8a-9a43-4c1b8f0c2a11",
        "ce_type": b"xiezuo.intake.clue_registered.v1",
        "ce_source": b"xiezuo-intake",
        "ce_time": b"2026-03-09T08:30:15.123456Z",
        "ce_countyid": b"c-001",
        "ce_zoneid": b"z-01",
        "ce_dataschema": b"xiezuo:schemas/events/xiezuo.intake.clue_registered.v1.json",
        "content-type": b"application/json",
        "ce_subject": "线索-1".encode(),
        "traceparent": TRACEPARENT.encode(),
        "tracestate": b"xiezuo=1",
    }
    assert all(isinstance(value, bytes) for value in headers.values())


def test_optional_headers_are_left_out_when_absent() -> None:
    names = {
        name for name, _ in _envelope(subject=None, traceparent=None, tracestate=None).headers()
    }
    assert names == {*REQUIRED, "ce_countyid", "ce_zoneid", "ce_dataschema", "content-type"}


@pytest.mark.parametrize(
    "envelope",
    [_envelope(), _envelope(subject=None, traceparent=None, tracestate=None)],
    ids=["all-attributes", "required-only"],
)
def test_headers_round_trip(envelope: Envelope) -> None:
    assert Envelope.from_kafka(envelope.headers(), envelope.data) == envelope
    # A client that hands headers over as a text mapping gets the same event.
    assert Envelope.from_kafka(envelope.header_map(), envelope.data) == envelope


def test_header_names_are_case_insensitive() -> None:
    envelope = _envelope()
    shouted = [(name.upper(), value) for name, value in envelope.headers()]
    assert Envelope.from_kafka(shouted, envelope.data) == envelope


def test_content_type_parameters_are_accepted_and_absent_content_type_means_json() -> None:
    envelope = _envelope()
    with_charset = _headers(envelope, **{"content-type": b"application/json; charset=utf-8"})
    assert Envelope.from_kafka(with_charset, envelope.data) == envelope
    assert (
        Envelope.from_kafka(_headers(envelope, **{"content-type": None}), envelope.data) == envelope
    )


@pytest.mark.parametrize("missing", REQUIRED)
def test_a_missing_required_header_is_named(missing: str) -> None:
    envelope = _envelope()
    with pytest.raises(EnvelopeError, match=f"missing CloudEvents headers: {missing}$"):
        Envelope.from_kafka(_headers(envelope, **{missing: None}), envelope.data)


def test_an_empty_required_header_counts_as_missing() -> None:
    envelope = _envelope()
    with pytest.raises(EnvelopeError, match=r"missing CloudEvents headers: ce_id, ce_time$"):
        Envelope.from_kafka(_headers(envelope, ce_id=b"", ce_time=None), envelope.data)


def test_no_headers_at_all_names_every_required_one() -> None:
    with pytest.raises(EnvelopeError) as caught:
        Envelope.from_kafka([], b"{}")
    assert str(caught.value) == f"missing CloudEvents headers: {', '.join(REQUIRED)}"


@pytest.mark.parametrize("version", [b"0.3", b"1", b"2.0"])
def test_an_unsupported_specversion_is_rejected(version: bytes) -> None:
    envelope = _envelope()
    with pytest.raises(
        EnvelopeError, match=rf"unsupported ce_specversion '{re.escape(version.decode())}'"
    ):
        Envelope.from_kafka(_headers(envelope, ce_specversion=version), envelope.data)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("yesterday", "is not RFC 3339"),
        ("2026-13-01T00:00:00Z", "is not RFC 3339"),
        ("2026-03-09T25:00:00Z", "is not RFC 3339"),
        ("", None),  # empty: reported as missing, not as a bad time
        ("2026-03-09T08:30:15", "is not RFC 3339"),  # no offset
        ("2026-03-09", "is not RFC 3339"),
        ("20260309T083015Z", "is not RFC 3339"),  # ISO 8601 basic format
        ("2026-W11-1T08:30:15Z", "is not RFC 3339"),  # week date
        ("2026-03-09T08Z", "is not RFC 3339"),
    ],
)
def test_a_bad_time_is_rejected_and_named(text: str, problem: str | None) -> None:
    envelope = _envelope()
    headers = _headers(envelope, ce_time=text.encode())
    if problem is None:
        with pytest.raises(EnvelopeError, match=r"missing CloudEvents headers: ce_time$"):
            Envelope.from_kafka(headers, envelope.data)
        return
    with pytest.raises(EnvelopeError) as caught:
        Envelope.from_kafka(headers, envelope.data)
    assert str(caught.value) == f"ce_time {text!r} {problem}"


def test_a_foreign_content_type_is_rejected() -> None:
    envelope = _envelope()
    with pytest.raises(EnvelopeError, match="unsupported content-type 'application/avro'"):
        Envelope.from_kafka(
            _headers(envelope, **{"content-type": b"application/avro"}), envelope.data
        )


def test_a_record_without_value_is_rejected() -> None:
    envelope = _envelope()
    with pytest.raises(EnvelopeError, match="record has no value"):
        Envelope.from_kafka(envelope.headers(), None)


def test_a_header_that_is_not_utf8_is_named() -> None:
    envelope = _envelope()
    with pytest.raises(EnvelopeError, match="header ce_source is not UTF-8"):
        Envelope.from_kafka(_headers(envelope, ce_source=b"\xff\xfe"), envelope.data)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2026, 3, 9, 8, 30, 15, 123456, tzinfo=UTC), "2026-03-09T08:30:15.123456Z"),
        (datetime(2026, 3, 9, 8, 30, 15, tzinfo=UTC), "2026-03-09T08:30:15Z"),
        # Beijing time is converted to UTC, never sent with an offset.
        (
            datetime(2026, 3, 9, 16, 30, 15, tzinfo=timezone(timedelta(hours=8))),
            "2026-03-09T08:30:15Z",
        ),
        # A naive datetime is taken as UTC.
        (datetime(2026, 3, 9, 8, 30, 15), "2026-03-09T08:30:15Z"),
    ],
)
def test_ce_time_is_rfc3339_utc_with_z(moment: datetime, expected: str) -> None:
    text = format_time(moment)
    assert text == expected
    assert RFC3339_UTC.match(text)
    assert dict(_envelope(time=moment).headers())["ce_time"] == expected.encode()


def test_parsed_time_is_utc_and_equal_to_the_instant_sent() -> None:
    parsed = parse_time("2026-03-09T16:30:15+08:00")
    assert parsed == datetime(2026, 3, 9, 8, 30, 15, tzinfo=UTC)
    assert parsed.utcoffset() == timedelta(0)
    assert parse_time(format_time(parsed)) == parsed


def test_lowercase_rfc3339_separators_are_accepted() -> None:
    envelope = _envelope()
    parsed = Envelope.from_kafka(
        _headers(envelope, ce_time=b"2026-03-09t08:30:15.5z"), envelope.data
    )
    assert parsed.time.isoformat() == "2026-03-09T08:30:15.500000+00:00"
