"""How each scripted Fate is played through cases' workflow: the choices made at each step."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from services.demo.scenario import Fate

# Which approve action answers which pending proposal (cases' approvals tables).
APPROVE_ACTIONS = {
    "disposal": "approve_disposal",
    "verification_proposal": "approve_outcome",
    "filing": "approve_filing",
    "decision": "approve_decision",
}
# Ways an inquiry (谈话函询) ends with the clue closed, in the shares a county sees them.
_INQUIRY_CLOSINGS = ("reminder_talk", "reminder_talk", "criticism", "accept_and_close")
# Sanctions a decision names (track, kind), picked per clue so the four forms vary.
_SANCTIONS = (
    ("party", "warning"),
    ("party", "warning"),
    ("party", "serious_warning"),
    ("government", "demerit"),
    ("party", "removal_from_post"),
)


@dataclass(frozen=True)
class Playbook:
    """The choices that carry one clue to its scripted end."""

    way: str
    final_stage: str
    # Every stage the clue passes through on its way (a stuck clue stops in one of them).
    road: tuple[str, ...]
    inquiry_outcome: str = ""
    verification_outcome: str = ""
    decision: str = ""
    sanctions: tuple[tuple[str, str], ...] = ()
    # The hearing sends the file back once for more investigation (退回补充调查).
    sent_back: bool = False

    @property
    def filed(self) -> bool:
        """Whether the road goes through filing (立案) and investigation."""
        return self.verification_outcome == "file_case"


_CASE_ROAD = (
    "registered",
    "disposal_proposed",
    "verification",
    "verification_proposed",
    "filing_proposed",
    "investigation",
    "hearing_pending",
    "hearing",
    "decision_proposed",
    "decided",
)


# Zones differ in how often their files come back from the hearing, so the demo's ranking
# separates them (each send-back is a deduction in the scoring rules). Percent of filed cases.
_SEND_BACK_PERCENT = (0, 2, 4, 6, 8, 10)


def sends_back(zone_index: int, key: str) -> bool:
    """Whether the hearing of the zone at `zone_index` sends this clue's file back once."""
    percent = _SEND_BACK_PERCENT[zone_index % len(_SEND_BACK_PERCENT)]
    return zlib.crc32(f"{key}:send-back".encode()) % 100 < percent


def _pick(options: tuple[str, ...] | tuple[tuple[str, str], ...], key: str) -> int:
    # crc32, not hash(): the same clue must get the same choice in every process.
    return zlib.crc32(key.encode("utf-8")) % len(options)


def playbook(fate: Fate, key: str, zone_index: int = 0) -> Playbook:
    """The playbook of a clue scripted to `fate` (`key` varies the choices deterministically)."""
    sent_back = sends_back(zone_index, key)
    if fate is Fate.CLOSED:
        return Playbook("close", "closed", ("registered", "disposal_proposed", "closed"))
    if fate is Fate.STORED_PENDING:
        stored = ("registered", "disposal_proposed", "stored_pending")
        return Playbook("store_pending", "stored_pending", stored)
    if fate is Fate.INQUIRY:
        outcome = _INQUIRY_CLOSINGS[_pick(_INQUIRY_CLOSINGS, key)]
        road = ("registered", "disposal_proposed", "inquiry", "closed")
        return Playbook("inquiry", "closed", road, inquiry_outcome=outcome)
    if fate is Fate.CASE_NO_SANCTION:
        # Filed and heard, then decided with education (批评教育) and no sanction.
        return Playbook(
            "preliminary_verification",
            "decided",
            _CASE_ROAD,
            verification_outcome="file_case",
            decision="education",
            sent_back=sent_back,
        )
    sanction = _SANCTIONS[_pick(_SANCTIONS, key)]
    return Playbook(
        "preliminary_verification",
        "decided",
        _CASE_ROAD,
        verification_outcome="file_case",
        decision=f"{sanction[0]}_sanction",
        sanctions=(sanction,),
        sent_back=sent_back,
    )
