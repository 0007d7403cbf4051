"""CloudEvents 1.0 envelopes in Kafka binary content mode (headers + raw JSON value)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"
# Required CloudEvents attributes, as Kafka headers per the Kafka protocol binding.
REQUIRED = ("ce_id", "ce_type", "ce_source", "ce_specversion", "ce_time")
# `dataschema` must be an absolute URI; the `xiezuo:` scheme names this repository and the rest
# is the schema's path in it (tools/gen_event_schemas.py writes one file per type).
DATASCHEMA_PREFIX = "xiezuo:schemas/events/"
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


class EnvelopeError(ValueError):
    """A record is not a valid Xiezuo CloudEvent."""


@dataclass(frozen=True)
class Envelope:
    """One event as it travels on Kafka."""

    id: str
    type: str
    source: str
    time: datetime
    county_id: str
    zone_id: str
    data: bytes
    subject: str | None = None
    traceparent: str | None = None
    tracestate: str | None = None

    @property
    def dataschema(self) -> str:
        """The JSON Schema of `data`, named by type (so it is never stored or parsed apart)."""
        return schema_uri(self.type)

    def headers(self) -> list[tuple[str, bytes]]:
        """Kafka headers for binary content mode (extensions lowercase alphanumeric)."""
        pairs = {
            "ce_specversion": SPEC_VERSION,
            "ce_id": self.id,
            "ce_type": self.type,
            "ce_source": self.source,
            "ce_time": format_time(self.time),
            "ce_countyid": self.county_id,
            "ce_zoneid": self.zone_id,
            "ce_dataschema": self.dataschema,
            "content-type": CONTENT_TYPE,
        }
        if self.subject:
            pairs["ce_subject"] = self.subject
        if self.traceparent:
            pairs["traceparent"] = self.traceparent
        if self.tracestate:
            pairs["tracestate"] = self.tracestate
        return [(name, value.encode()) for name, value in pairs.items()]

    def header_map(self) -> dict[str, str]:
        """The same headers as text, for clients that take a mapping."""
        return {name: value.decode() for name, value in self.headers()}

    @classmethod
    def from_kafka(
        cls, headers: Iterable[tuple[str, bytes]] | Mapping[str, str], value: bytes | None
    ) -> Envelope:
        """Parse a Kafka record; raises EnvelopeError naming what is wrong."""
        items = headers.items() if isinstance(headers, Mapping) else headers
        found: dict[str, str] = {}
        for name, raw in items:
            try:
                found[name.lower()] = raw.decode() if isinstance(raw, bytes) else str(raw)
            except UnicodeDecodeError as exc:
                raise EnvelopeError(f"header {name} is not UTF-8") from exc
        missing = [name for name in REQUIRED if not found.get(name)]
        if missing:
            raise EnvelopeError(f"missing CloudEvents headers: {', '.join(missing)}")
        if found["ce_specversion"] != SPEC_VERSION:
            raise EnvelopeError(f"unsupported ce_specversion {found['ce_specversion']!r}")
        content_type = found.get("content-type", CONTENT_TYPE)
        if not content_type.startswith(CONTENT_TYPE):
            raise EnvelopeError(f"unsupported content-type {content_type!r}")
        if value is None:
            raise EnvelopeError("record has no value")
        return cls(
            id=found["ce_id"],
            type=found["ce_type"],
            source=found["ce_source"],
            time=parse_time(found["ce_time"]),
            county_id=found.get("ce_countyid", ""),
            zone_id=found.get("ce_zoneid", ""),
            data=value,
            subject=found.get("ce_subject"),
            traceparent=found.get("traceparent"),
            tracestate=found.get("tracestate"),
        )


def schema_uri(event_type: str) -> str:
    """The JSON Schema of an event type's data: `xiezuo:schemas/events/<type>.json`."""
    return f"{DATASCHEMA_PREFIX}{event_type}.json"


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with a `Z`, as CloudEvents requires."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    """Parse an RFC 3339 timestamp; raises EnvelopeError when it is not one."""
    # fromisoformat alone also takes ISO 8601 forms RFC 3339 forbids (week dates, basic format).
    if not _RFC3339.match(text):
        raise EnvelopeError(f"ce_time {text!r} is not RFC 3339")
    try:
        moment = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError as exc:
        raise EnvelopeError(f"ce_time {text!r} is not RFC 3339") from exc
    if moment.tzinfo is None:
        raise EnvelopeError(f"ce_time {text!r} has no time zone")
    return moment.astimezone(UTC)
