"""Routing (分片负责): a report goes to the zone its township is placed in."""

from __future__ import annotations


def route(*, township_id: str, requested_zone: str, placed_zone: str | None) -> tuple[str, str]:
    """(zone, problem with zone_id); the registry decides when it knows the township.

    A township not yet in the registry keeps the zone the request names (older clients, and
    counties whose registry is not loaded); a request naming another zone is refused.
    """
    if placed_zone is None:
        if not requested_zone:
            return "", f"is required: township {township_id} is not in the zone registry"
        return requested_zone, ""
    if requested_zone and requested_zone != placed_zone:
        return "", f"township {township_id} belongs to zone {placed_zone}; omit zone_id or send it"
    return placed_zone, ""
