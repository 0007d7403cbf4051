"""The domain CaseFile as JSON in the case_file row, and back."""

from __future__ import annotations

import json
from dataclasses import fields, is_dataclass, replace
from json.encoder import encode_basestring
from typing import Any

from services.cases.domain.casefile import CaseFile, Decision, Evidence, Proposal, Sanction

# How `encode` writes a filed case (立案): keys are sorted and "filed" is a key of the file only,
# and a quote inside a string value is escaped, so a count can test the stored text in SQL.
FILED_MARK = '"filed": true'


def encode(file: CaseFile) -> str:
    """The file as canonical JSON (the same text `json.dumps(asdict(file), ...)` gives)."""
    return json.dumps(_plain(file), sort_keys=True, ensure_ascii=False)


class NewFileEncoder:
    """`encode` of new files that differ only in their id: the rest is encoded once.

    The consumer registers every clue with a new file of one of a few kinds (subject level,
    rule version); encoding ~40 fields per clue was the largest part of its own CPU.
    """

    _MARKER = '"case_id": ""'

    def __init__(self, file: CaseFile) -> None:
        self._file = file
        text = encode(replace(file, case_id=""))
        # Keys are unique and sorted, so the top-level id is where the marker is, if it is
        # there once (a nested "case_id" would make it ambiguous: then encode each file).
        self._parts = text.split(self._MARKER) if text.count(self._MARKER) == 1 else None

    def __call__(self, case_id: str) -> str:
        """The encoded file with this id."""
        if self._parts is None:
            return encode(replace(self._file, case_id=case_id))
        before, after = self._parts
        # What json.dumps(case_id, ensure_ascii=False) writes, without building an encoder.
        return f'{before}"case_id": {encode_basestring(case_id)}{after}'


def _plain(value: Any) -> Any:
    """Dataclasses as dicts, tuples as lists: what asdict does, without its deep copies.

    asdict copies every leaf with copy.deepcopy; the file holds only str, int, bool and None
    leaves, so walking it directly gives the same JSON at a fraction of the cost (this runs
    for every clue the consumer registers and every step saved).
    """
    if is_dataclass(value) and not isinstance(value, type):
        return {field.name: _plain(getattr(value, field.name)) for field in fields(value)}
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


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
        measures=tuple(data.get("measures", ())),
    )


def _decision(data: dict[str, Any]) -> Decision:
    return Decision(
        kind=data["kind"],
        sanctions=tuple((Sanction(**s), months) for s, months in data["sanctions"]),
        measures=tuple(data.get("measures", ())),
    )
