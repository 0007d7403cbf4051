"""Reading stored draw records back, in every format ever written."""

from __future__ import annotations

import json
from typing import Any

from services.staffing.domain.draw_record import (
    RECORD_FORMAT,
    CandidateFacts,
    DrawOutcome,
    DrawRecord,
    DrawRequest,
    Exclusion,
    ExclusionReason,
    FilterStage,
)


def decode_record(text: str) -> DrawRecord:
    """The record stored as `text` (format 2 rows, or format 1 pydantic objects)."""
    data: dict[str, Any] = json.loads(text)
    if data.get("format") == RECORD_FORMAT:
        candidates = tuple(_candidate(*row) for row in data["candidates"])
        exclusions = tuple(
            Exclusion(person_id, ExclusionReason(reason), detail)
            for person_id, reason, detail in data["exclusions"]
        )
        names = tuple(data["stages"])
        recorded = None
        members, unfillable = data["outcome"]
        outcome = DrawOutcome(members=tuple(members), unfillable_reasons=tuple(unfillable))
    elif "format" not in data:
        candidates = tuple(_candidate(**fields) for fields in data["candidates"])
        recorded = tuple(FilterStage(s["name"], tuple(s["remaining"])) for s in data["stages"])
        names = tuple(stage.name for stage in recorded)
        exclusions = tuple(
            Exclusion(e["person_id"], ExclusionReason(e["reason"]), e["detail"])
            for e in data["exclusions"]
        )
        outcome = DrawOutcome(
            members=tuple(data["outcome"]["members"]),
            unfillable_reasons=tuple(data["outcome"]["unfillable_reasons"]),
        )
    else:
        raise ValueError(f"draw record format {data['format']!r} is unknown")
    return DrawRecord(
        draw_id=data["draw_id"],
        request=DrawRequest.model_validate(data["request"]),
        algorithm_version=data["algorithm_version"],
        rules_version=data["rules_version"],
        max_workload_distance=data["max_workload_distance"],
        previous_hash=data["previous_hash"],
        seed=data["seed"],
        candidates=candidates,
        stage_names=names,
        exclusions=exclusions,
        outcome=outcome,
        override_reason=data.get("override_reason"),
        overridden_by=data.get("overridden_by"),
        recorded_stages=recorded,
    )


def _candidate(*values: Any, **fields: Any) -> CandidateFacts:
    facts = CandidateFacts(*values, **fields)
    # JSON has no tuples: restore them so a decoded record equals the one that was drawn.
    return facts._replace(skills=tuple(facts.skills), worked_stages=tuple(facts.worked_stages))
