"""The domain CaseFile as JSON in the case_file row, and back."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from services.cases.domain.casefile import CaseFile, Decision, Evidence, Proposal, Sanction


def encode(file: CaseFile) -> str:
    """The file as canonical JSON."""
    return json.dumps(asdict(file), sort_keys=True, ensure_ascii=False)


def decode(text: str) -> CaseFile:
    """A file from its JSON."""
    data: dict[str, Any] = json.loads(text)
    pending = data.pop("pending")
    decision = data.pop("decision")
    tuples = (
        "plan_approvals",
        "working_team",
        "hearing_team",
        "review_team",
        "investigators",
        "hearers",
        "recused",
        "signatures",
    )
    for name in tuples:
        data[name] = tuple(data[name])
    # Absent from files saved before joint cases existed.
    data["joint_townships"] = tuple(data.get("joint_townships", ()))
    data["evidence"] = tuple(Evidence(**item) for item in data["evidence"])
    data["extensions_used"] = tuple((stage, count) for stage, count in data["extensions_used"])
    return CaseFile(
        **data,
        pending=_proposal(pending) if pending else None,
        decision=_decision(decision) if decision else None,
    )


def _proposal(data: dict[str, Any]) -> Proposal:
    return Proposal(
        kind=data["kind"],
        choice=data["choice"],
        chain=tuple(data["chain"]),
        given=tuple(data["given"]),
        sanctions=tuple(Sanction(**s) for s in data["sanctions"]),
    )


def _decision(data: dict[str, Any]) -> Decision:
    return Decision(
        kind=data["kind"],
        sanctions=tuple((Sanction(**s), months) for s, months in data["sanctions"]),
    )
