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
# Ways an inquiry (谈话函询) ends with the clue closed, in the shares a county sees them: most
# end in a reminder talk or criticism (the first form), some with the explanation accepted.
_INQUIRY_CLOSINGS = (
    "reminder_talk",
    "reminder_talk",
    "reminder_talk",
    "criticism",
    "criticism",
    "admonishment",
    "self_criticism",
    "accept_and_close",
)
# How a preliminary verification that files nothing ends (了结 or 谈话提醒).
_VERIFICATION_CLOSINGS = ("close", "close", "reminder_talk", "reminder_talk", "refer")
# Sanctions a decision names (track, kind), picked per clue so the four forms vary: light
# sanctions the many, heavy ones the few.
_SANCTIONS = (
    ("party", "warning"),
    ("party", "warning"),
    ("party", "warning"),
    ("party", "serious_warning"),
    ("party", "serious_warning"),
    ("government", "warning"),
    ("government", "demerit"),
    ("government", "major_demerit"),
    ("party", "removal_from_post"),
    ("party", "probation"),
)
# 双开: expulsion from the party and from public office, decided with the transfer.
EXPULSIONS = (("party", "expulsion"), ("government", "expulsion"))
# Organisational measures (组织处理) decided alone, without a sanction.
_ORGANISATIONAL = (("reassignment",), ("suspension_for_inspection",), ("removal_from_office",))


@dataclass(frozen=True)
class Appeal:
    """One review of a decision: who answers it and whether it changes the outcome."""

    # "first_review" (复审, the county commission) or "second_review" (复核, one level up).
    level: str
    changed: bool = False
    # The decision and sanctions a changed outcome puts in place of the original.
    decision: str = ""
    sanctions: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Playbook:
    """The choices that carry one clue to its scripted end."""

    way: str
    final_stage: str
    # Every stage the clue passes through on its way (a stuck clue stops in one of them).
    road: tuple[str, ...]
    inquiry_outcome: str = ""
    # 函询: a letter is sent and answered before the inquiry concludes (else a talk, 谈话).
    inquiry_letter: bool = False
    verification_outcome: str = ""
    decision: str = ""
    sanctions: tuple[tuple[str, str], ...] = ()
    measures: tuple[str, ...] = ()
    # The hearing sends the file back once for more investigation (退回补充调查).
    sent_back: bool = False
    # 留置 with one extension during the investigation (and the investigation extended).
    retention: bool = False
    # After a transfer: rounds of supplementary investigation the procuratorate asks for.
    supplementary_rounds: int = 0
    appeals: tuple[Appeal, ...] = ()
    # The one step entered after its time limit ran out ("" when all are in time).
    late_step: str = ""

    @property
    def filed(self) -> bool:
        """Whether the road goes through filing (立案) and investigation."""
        return self.verification_outcome == "file_case"

    @property
    def transferred(self) -> bool:
        """Whether the decision transfers the case to the procuratorate."""
        return self.decision == "transfer"


_REGISTERED = ("registered", "disposal_proposed")
_VERIFIED = ("verification", "verification_proposed")
_FILED = (
    "filing_proposed",
    "investigation",
    "hearing_pending",
    "hearing",
    "decision_proposed",
)
_CASE_ROAD = (*_REGISTERED, *_VERIFIED, *_FILED, "decided")
_APPEAL_ROAD = (*_CASE_ROAD, "appeal_first_review", "appeal_second_review", "decided")
_TRANSFER_ROAD = (*_REGISTERED, *_VERIFIED, *_FILED, "transferred", "supplementary", "closed")


# Zones differ in how often their files come back from the hearing, so the demo's ranking
# separates them (each send-back is a deduction in the scoring rules). Percent of filed cases.
_SEND_BACK_PERCENT = (0, 2, 4, 6, 8, 10)


def sends_back(zone_index: int, key: str) -> bool:
    """Whether the hearing of the zone at `zone_index` sends this clue's file back once."""
    percent = _SEND_BACK_PERCENT[zone_index % len(_SEND_BACK_PERCENT)]
    return zlib.crc32(f"{key}:send-back".encode()) % 100 < percent


def _draw(key: str, what: str, size: int) -> int:
    # crc32, not hash(): the same clue must get the same choice in every process.
    return zlib.crc32(f"{key}:{what}".encode()) % size


def playbook(fate: Fate, key: str, zone_index: int = 0, *, late: bool = False) -> Playbook:
    """The playbook of a clue scripted to `fate` (`key` varies the choices deterministically).

    A `late` clue has one step entered after its time limit: a disposal after its month, or
    an investigation report after its 90 days.
    """
    road: tuple[str, ...]
    late_disposal = "approve_disposal" if late else ""
    if fate is Fate.CLOSED:
        road = (*_REGISTERED, "closed")
        return Playbook("close", "closed", road, late_step=late_disposal)
    if fate is Fate.STORED_PENDING:
        road = (*_REGISTERED, "stored_pending")
        return Playbook("store_pending", "stored_pending", road)
    if fate is Fate.INQUIRY:
        outcome = _INQUIRY_CLOSINGS[_draw(key, "inquiry", len(_INQUIRY_CLOSINGS))]
        # About half are letters of inquiry (函询), the rest talks (谈话).
        letter = _draw(key, "letter", 2) == 0
        return Playbook(
            "inquiry",
            "closed",
            (*_REGISTERED, "inquiry", "closed"),
            inquiry_outcome=outcome,
            inquiry_letter=letter,
            late_step=late_disposal,
        )
    if fate is Fate.VERIFIED_NOT_FILED:
        outcome = _VERIFICATION_CLOSINGS[_draw(key, "verified", len(_VERIFICATION_CLOSINGS))]
        road = (*_REGISTERED, *_VERIFIED, "closed")
        return Playbook("preliminary_verification", "closed", road, verification_outcome=outcome)
    if fate is Fate.VERIFIED_STORED:
        road = (*_REGISTERED, *_VERIFIED, "stored_pending")
        return Playbook(
            "preliminary_verification", "stored_pending", road, verification_outcome="store"
        )
    sent_back = sends_back(zone_index, key)
    if fate in (Fate.CASE_NO_SANCTION, Fate.CASE_ORGANISATIONAL):
        organisational = fate is Fate.CASE_ORGANISATIONAL
        alone = _ORGANISATIONAL[_draw(key, "measures", len(_ORGANISATIONAL))]
        return Playbook(
            "preliminary_verification",
            "decided",
            _CASE_ROAD,
            verification_outcome="file_case",
            decision="organisational_handling" if organisational else "education",
            measures=alone if organisational else (),
            sent_back=sent_back,
        )
    if fate in (Fate.CASE_TRANSFERRED, Fate.CASE_RETAINED):
        retained = fate is Fate.CASE_RETAINED
        return Playbook(
            "preliminary_verification",
            "closed",
            _TRANSFER_ROAD,
            verification_outcome="file_case",
            decision="transfer",
            sanctions=EXPULSIONS,
            retention=retained,
            supplementary_rounds=1 if retained else _draw(key, "supplementary", 2),
        )
    sanction = _SANCTIONS[_draw(key, "sanction", len(_SANCTIONS))]
    # A heavy party sanction comes with removal from office (免职) beside it.
    measures: tuple[str, ...] = ()
    if sanction[1] == "removal_from_post":
        measures = ("removal_from_office",)
    if fate is Fate.INQUIRY_ESCALATED:
        road = (*_REGISTERED, "inquiry", *_VERIFIED, *_FILED, "decided")
        return Playbook(
            "inquiry",
            "decided",
            road,
            inquiry_outcome="escalate_to_verification",
            inquiry_letter=True,
            verification_outcome="file_case",
            decision=f"{sanction[0]}_sanction",
            sanctions=(sanction,),
            measures=measures,
        )
    appeals: tuple[Appeal, ...] = ()
    if fate is Fate.CASE_APPEALED:
        # One review in three finds the sanction too heavy and changes it to a warning.
        changed = _draw(key, "appeal", 3) == 0
        appeals = (_first_review(changed, sanction),)
    elif fate is Fate.CASE_APPEALED_TWICE:
        # The county upholds; the city commission changes the outcome to education.
        appeals = (
            _first_review(False, sanction),
            Appeal("second_review", changed=True, decision="education"),
        )
    road = _APPEAL_ROAD if appeals else _CASE_ROAD
    return Playbook(
        "preliminary_verification",
        "decided",
        road,
        verification_outcome="file_case",
        decision=f"{sanction[0]}_sanction",
        sanctions=(sanction,),
        measures=measures,
        sent_back=sent_back,
        appeals=appeals,
        late_step="submit_investigation_report" if late else "",
    )


def _first_review(changed: bool, sanction: tuple[str, str]) -> Appeal:
    if not changed:
        return Appeal("first_review")
    if sanction[1] == "warning":
        # A warning found too heavy: education instead (批评教育), no sanction.
        return Appeal("first_review", changed=True, decision="education")
    # A heavier sanction reduced to a party warning.
    return Appeal(
        "first_review", changed=True, decision="party_sanction", sanctions=(("party", "warning"),)
    )
