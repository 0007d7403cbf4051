"""The case file (案卷) from clue to closure: a pure state machine driven by the rule set."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime

from services.cases.domain.ruleset import RuleSet

DISPOSAL_WAYS = {
    # 四类处置方式 → the stage an approved disposal leads to.
    "inquiry": "inquiry",
    "preliminary_verification": "verification",
    "store_pending": "stored_pending",
    "close": "closed",
}
INQUIRY_OUTCOMES = {
    "accept_and_close": "closed",
    "reminder_talk": "closed",
    "criticism": "closed",
    "self_criticism": "closed",
    "admonishment": "closed",
    "second_inquiry": "inquiry",
    "escalate_to_verification": "verification",
}
VERIFICATION_PROPOSALS = {
    "file_case": "filing_proposed",
    "close": "closed",
    "reminder_talk": "closed",
    "store": "stored_pending",
    "refer": "closed",
}
DECISION_KINDS = {
    "education": "decided",
    "party_sanction": "decided",
    "government_sanction": "decided",
    "accountability": "decided",
    "recommendation": "decided",
    "transfer": "transferred",
    "cancel": "closed",
    # 组织处理 on its own (停职检查, 调整职务, 责令辞职, 免职, 降职): no sanction.
    "organisational_handling": "decided",
}
# Decisions that cannot carry organisational measures.
NO_MEASURES = frozenset({"cancel"})
# What the procuratorate decides on a transferred case (Supervision Law (2018) art. 47).
PROCURATORATE_DECISIONS = {
    "prosecute": "closed",
    "not_prosecute": "closed",
    "return_supplementary": "supplementary",
}
APPEAL_OUTCOMES = ("upheld", "changed")
# What a review may change a decision into (a transfer is the procuratorate's road, not this).
CHANGED_DECISIONS = frozenset(DECISION_KINDS) - {"transfer"}
# The sanctioned person's own role: they may file an appeal on their case and nothing else.
SUBJECT_ROLE = "case_subject"
# What a periodic review of a stored clue (暂存待查) decides.
STORED_REVIEWS = {"reopen": "registered", "keep": "stored_pending"}
# The time limit that starts when a file enters a stage (if the rule set has it).
ENTRY_CLOCKS = {"verification": "verification", "stored_pending": "stored_review"}
# Where a rejected proposal sends the file back to.
REJECTED_TO = {
    "disposal": "registered",
    "verification_proposal": "verification",
    "filing": "verification",
    "decision": "hearing",
}
HEARING_STAGES = frozenset({"hearing_pending", "hearing", "decision_proposed"})
APPEAL_STAGES = frozenset({"appeal_first_review", "appeal_second_review"})
# Stages that only exist once the case has been filed (立案).
FILED_STAGES = frozenset(
    {"investigation", "decided", "transferred", "supplementary"} | HEARING_STAGES | APPEAL_STAGES
)
DECIDED_STAGES = frozenset({"decided", "transferred", "supplementary"} | APPEAL_STAGES)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class Refused(Exception):
    """A command the file cannot take; subclasses say why."""

    def __init__(self, reason: str, field: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field


class Forbidden(Refused):
    """The actor's role (or team membership) does not allow this action."""


class NotNow(Refused):
    """The action is not possible in the file's current stage or state."""


class WrongStage(NotNow):
    """The action is not one the file's current stage allows at all."""


class BadCommand(Refused):
    """The command itself is malformed (a field is missing or out of range)."""


@dataclass(frozen=True)
class Actor:
    """Who acts: a person with the roles their token grants."""

    person_id: str
    roles: frozenset[str]


@dataclass(frozen=True)
class Sanction:
    """One party or government sanction of a decision."""

    track: str  # "party" or "government"
    kind: str


@dataclass(frozen=True)
class Meeting:
    """The record of a collective decision: the body, its minutes and the vote."""

    body: str
    minutes_ref: str
    members: tuple[str, ...]
    present: tuple[str, ...]
    votes_for: int
    votes_against: int = 0


@dataclass(frozen=True)
class Command:
    """One step somebody takes on a file; which fields matter depends on the action."""

    action: str
    choice: str = ""  # the way, outcome, proposal or decision kind chosen
    days: int = 0
    description: str = ""
    sha256: str = ""
    sanctions: tuple[Sanction, ...] = ()
    reason: str = ""
    # The decision kind a review changes the decision into (decide_appeal "changed").
    decision: str = ""
    # When the step takes effect: the store supplies it, so windows can be judged.
    at: datetime | None = None
    # The meeting that decided, where the rules want a collective decision.
    meeting: Meeting | None = None
    # Organisational measures (组织处理) a hearing report or changed review names.
    measures: tuple[str, ...] = ()


@dataclass(frozen=True)
class Proposal:
    """Something proposed that awaits its approval chain."""

    kind: str  # an approvals table: disposal, verification_proposal, filing, decision
    choice: str
    chain: tuple[str, ...]
    given: tuple[str, ...] = ()
    sanctions: tuple[Sanction, ...] = ()
    measures: tuple[str, ...] = ()

    @property
    def next_approver(self) -> str:
        """The role whose approval comes next."""
        return self.chain[len(self.given)]


@dataclass(frozen=True)
class Evidence:
    """An evidence item's metadata and content hash (the content stays in the archive)."""

    description: str
    sha256: str
    recorded_by: str


@dataclass(frozen=True)
class Decision:
    """The approved decision and its sanctions with effect periods in months."""

    kind: str
    sanctions: tuple[tuple[Sanction, int], ...] = ()
    # Organisational measures (组织处理) decided beside (or instead of) sanctions.
    measures: tuple[str, ...] = ()


@dataclass(frozen=True)
class CaseFile:
    """Everything the workflow needs to know about one clue/case."""

    case_id: str
    subject_level: str
    rule_version: str
    stage: str = "registered"
    pending: Proposal | None = None
    plan_approvals: tuple[str, ...] = ()
    # The team requested and not yet assigned (verification/investigation/hearing/review).
    team_requested: str = ""
    # The id of that request: staffing's answer is matched by it, never by stage alone.
    team_request_id: str = ""
    working_team: tuple[str, ...] = ()
    hearing_team: tuple[str, ...] = ()
    review_team: tuple[str, ...] = ()
    # Everyone who ever verified or investigated: never on the hearing or review team.
    investigators: tuple[str, ...] = ()
    hearers: tuple[str, ...] = ()
    recused: tuple[str, ...] = ()
    signatures: tuple[str, ...] = ()
    evidence: tuple[Evidence, ...] = ()
    subject_heard: bool = False
    extension_requested: int = 0
    extensions_used: tuple[tuple[str, int], ...] = ()
    inquiry_rounds: int = 0
    # A letter of inquiry (函询) of the current round: "", "awaiting_reply" or "answered".
    inquiry_letter: str = ""
    # 留置: "", "requested", "in_force", "extension_requested" or "ended"; extensions granted.
    retention: str = ""
    retention_extensions: int = 0
    # The subject's unit told of the filing (通报相关组织), "" until it has been.
    unit_notified: str = ""
    send_backs: int = 0
    supplementary_rounds: int = 0
    appeal_level: int = 0
    filed: bool = False
    decision: Decision | None = None
    # When the decision (or the last review's answer) took effect, ISO 8601 ("" unknown):
    # the window to appeal runs from it.
    decided_at: str = ""
    # The time limit running now ("" when none): at most one clock runs at a time.
    clock: str = ""
    # The clue this one was closed into as a duplicate ("" when it stands on its own).
    duplicate_of: str = ""
    # A joint case (联合办案): the other townships it spans besides the subject's own.
    joint_townships: tuple[str, ...] = ()

    def current_team(self) -> tuple[str, ...]:
        """The team working the file in its current stage."""
        if self.stage in HEARING_STAGES:
            return self.hearing_team
        if self.stage in APPEAL_STAGES:
            return self.review_team
        return self.working_team

    def extensions_of(self, stage: str) -> int:
        """How many extensions the stage's time limit has had."""
        return dict(self.extensions_used).get(stage, 0)


@dataclass(frozen=True)
class Transition:
    """What a command did: the new file and what the record must say about it."""

    before: CaseFile
    after: CaseFile
    action: str
    # Integration event name: ClueDisposed, CaseFiled, StageChanged, ExtensionGranted, …
    event: str
    detail: dict[str, object] = field(default_factory=dict)
    team_needed: str = ""
    clock_started: str = ""
    clock_stopped: str = ""
    extended_days: int = 0
    # A time limit running beside the file's clock (retention runs during an investigation).
    side_clock_started: str = ""
    side_clock_stopped: str = ""
    side_extended_months: int = 0

    @property
    def stage_changed(self) -> bool:
        """Whether the file moved to another stage."""
        return self.before.stage != self.after.stage


def handle(file: CaseFile, command: Command, actor: Actor, rules: RuleSet) -> Transition:
    """Apply one command under the rules the file started with, or raise Refused."""
    rule = rules.transitions.get(command.action)
    if rule is None:
        raise BadCommand(f"unknown action {command.action!r}", "action")
    _check_may(file, command.action, actor, rules)
    transition = _ACTIONS[command.action](file, command, actor, rules)
    meeting = _collective(_approval_table(file, rule.approval, rules), command, actor, rules)
    if meeting:
        transition.detail["meeting"] = meeting
    if transition.stage_changed and transition.after.stage not in rule.to_stages:
        raise NotNow(
            f"rule set {rules.version} does not let {command.action} lead to "
            f"{transition.after.stage}"
        )
    return transition


def _check_may(file: CaseFile, action: str, actor: Actor, rules: RuleSet) -> None:
    """Whether the rules let this actor take this action on the file now, or raise Refused."""
    rule = rules.transitions[action]
    if file.stage not in rule.from_stages:
        raise WrongStage(f"{action} is not possible in stage {file.stage}")
    if actor.person_id in file.recused:
        raise Forbidden(f"{actor.person_id} has been recused from {file.case_id}")
    required = _required_role(file, rule.approval, rules) if rule.approval else ""
    if required and required not in actor.roles:
        raise Forbidden(f"{action} needs the approval of {required}")
    if not required and actor.roles.isdisjoint(rule.roles):
        raise Forbidden(f"{action} needs one of the roles {sorted(rule.roles)}")
    if rule.team and actor.person_id not in file.current_team():
        raise Forbidden(f"{actor.person_id} is not on the team working {file.case_id}")


def open_actions(file: CaseFile, actor: Actor, rules: RuleSet) -> tuple[str, ...]:
    """The actions the rules let this actor take on the file in its stage, in rule-set order.

    The same checks `handle` makes before it looks at a command's fields, so a client can offer
    exactly these; a step's own fields may still be refused.
    """
    allowed = []
    for action in rules.transitions:
        try:
            _check_may(file, action, actor, rules)
        except Refused:
            continue
        allowed.append(action)
    return tuple(allowed)


def open_approvals(file: CaseFile, actor: Actor, rules: RuleSet) -> tuple[str, ...]:
    """The open actions that are approvals (their rule names an approvals table, not roles)."""
    return tuple(
        action for action in open_actions(file, actor, rules) if rules.transitions[action].approval
    )


def _approval_table(file: CaseFile, approval: str, rules: RuleSet) -> str:
    """The approvals table an approval of the file in its stage answers to ("" if none)."""
    if approval == "plan":
        return "verification_plan" if file.stage == "verification" else "investigation_plan"
    if approval == "appeal":
        second = file.stage == "appeal_second_review" and "appeal_second_review" in rules.approvals
        return "appeal_second_review" if second else "appeal_review"
    return approval if approval in rules.approvals else ""


def _required_role(file: CaseFile, approval: str, rules: RuleSet) -> str:
    if approval == "plan":
        chain = rules.approvers(_approval_table(file, approval, rules), file.subject_level)
        if len(file.plan_approvals) >= len(chain):
            raise NotNow("the plan is already approved")
        return chain[len(file.plan_approvals)]
    if approval == "extension":
        if not file.extension_requested:
            raise NotNow("no extension has been requested")
        return rules.extension_approver(file.stage, file.subject_level)
    if approval == "appeal":
        # 复审 by the deciding commission; 复核 one level up (Supervision Law (2018) art. 49).
        return rules.approvers(_approval_table(file, approval, rules), file.subject_level)[0]
    if approval not in REJECTED_TO and approval != "any_pending":
        # A one-step approval that is not a proposal (e.g. an appeal review's conclusion).
        return rules.approvers(approval, file.subject_level)[0]
    if file.pending is None:
        raise NotNow("nothing awaits approval")
    if approval not in ("any_pending", file.pending.kind):
        raise NotNow(f"the pending proposal is a {file.pending.kind}, not a {approval}")
    return file.pending.next_approver


def _move(
    file: CaseFile,
    command: Command,
    after: CaseFile,
    event: str = "StageChanged",
    *,
    team_needed: str = "",
    clock_started: str = "",
    clock_stopped: str = "",
    extended_days: int = 0,
) -> Transition:
    detail: dict[str, object] = {"reason": command.reason} if command.reason else {}
    if command.choice:
        detail["choice"] = command.choice
    if clock_stopped or clock_started:
        after = replace(after, clock=clock_started)
    return Transition(
        before=file,
        after=after,
        action=command.action,
        event=event,
        detail=detail,
        team_needed=team_needed,
        clock_started=clock_started,
        clock_stopped=clock_stopped,
        extended_days=extended_days,
    )


def _enter(file: CaseFile, stage: str) -> tuple[CaseFile, str]:
    """The file entering `stage`, and the team that stage needs from staffing ("" if none)."""
    if stage == "verification":
        return replace(
            file,
            stage=stage,
            plan_approvals=(),
            working_team=(),
            signatures=(),
            team_requested="verification",
        ), "verification"
    return replace(file, stage=stage), ""


def _entry_clock(stage: str, rules: RuleSet) -> str:
    """The time limit a stage starts, when the file's rule version has one."""
    clock = ENTRY_CLOCKS.get(stage, "")
    return clock if clock in rules.time_limits else ""


def _propose_disposal(file: CaseFile, command: Command, actor: Actor, rules: RuleSet) -> Transition:
    if command.choice not in DISPOSAL_WAYS:
        raise BadCommand(f"must be one of {sorted(DISPOSAL_WAYS)}", "choice")
    chain = rules.approvers("disposal", file.subject_level)
    proposal = Proposal(kind="disposal", choice=command.choice, chain=chain)
    return _move(
        file,
        command,
        replace(file, stage="disposal_proposed", pending=proposal),
        "DisposalProposed",
    )


def _approve(
    file: CaseFile, command: Command, actor: Actor, rules: RuleSet
) -> tuple[Proposal, bool]:
    """Record the next approval of the pending proposal; True when the chain is complete."""
    assert file.pending is not None
    proposal = replace(file.pending, given=(*file.pending.given, file.pending.next_approver))
    return proposal, len(proposal.given) == len(proposal.chain)


def _collective(table: str, command: Command, actor: Actor, rules: RuleSet) -> dict[str, object]:
    """Check the meeting a collective approval needs; its record for the step ({} if none)."""
    body_id = rules.collective.get(table)
    return _in_session(body_id, table, command, actor, rules) if body_id else {}


def _in_session(
    body_id: str, what: str, command: Command, actor: Actor, rules: RuleSet
) -> dict[str, object]:
    """Check that `body_id` decided `what` in a quorate meeting; the meeting's record."""
    body = rules.decision_bodies[body_id]
    meeting = command.meeting
    if meeting is None:
        raise BadCommand(f"{what} is decided collectively by {body.name}", "meeting")
    if meeting.body != body_id:
        raise BadCommand(f"must be {body_id!r} ({body.name})", "meeting.body")
    if not meeting.minutes_ref.strip():
        raise BadCommand("is required: the minutes of the meeting", "meeting.minutes_ref")
    members, present = set(meeting.members), set(meeting.present)
    if not members or (body.members and members != body.members):
        raise BadCommand(f"must list the members of {body.name}", "meeting.members")
    if len(members) != len(meeting.members) or len(present) != len(meeting.present):
        raise BadCommand("lists someone twice", "meeting.present")
    if not present <= members:
        raise BadCommand(f"only members of {body.name} are present", "meeting.present")
    if actor.person_id not in present:
        raise BadCommand("the one recording the decision was at the meeting", "meeting.present")
    votes = meeting.votes_for + meeting.votes_against
    if meeting.votes_for < 0 or meeting.votes_against < 0 or votes > len(present):
        raise BadCommand("more votes than members present", "meeting.votes_for")
    if len(present) * 100 <= body.quorum_percent * len(members):
        raise NotNow(f"{body.name} was not quorate: {len(present)} of {len(members)} present")
    if meeting.votes_for * 100 <= body.majority_percent * len(present):
        raise NotNow(f"the motion did not carry: {meeting.votes_for} of {len(present)} for")
    return {
        "body": body_id,
        "minutes_ref": meeting.minutes_ref,
        "members": len(members),
        "present": sorted(present),
        "votes_for": meeting.votes_for,
        "votes_against": meeting.votes_against,
    }


def _approval_recorded(file: CaseFile, command: Command, proposal: Proposal) -> Transition:
    transition = _move(file, command, replace(file, pending=proposal), "ApprovalRecorded")
    transition.detail["approved_by_role"] = proposal.given[-1]
    return transition


def _approve_disposal(file: CaseFile, command: Command, actor: Actor, rules: RuleSet) -> Transition:
    proposal, complete = _approve(file, command, actor, rules)
    if not complete:
        return _approval_recorded(file, command, proposal)
    after, team = _enter(replace(file, pending=None), DISPOSAL_WAYS[proposal.choice])
    transition = _move(
        file,
        command,
        after,
        "ClueDisposed",
        team_needed=team,
        clock_stopped="disposal",
        clock_started=_entry_clock(after.stage, rules),
    )
    transition.detail["way"] = proposal.choice
    return transition


def _reject(file: CaseFile, command: Command, actor: Actor, rules: RuleSet) -> Transition:
    assert file.pending is not None
    if not command.reason:
        raise BadCommand("a rejection must give its reason", "reason")
    stage = REJECTED_TO[file.pending.kind]
    return _move(file, command, replace(file, pending=None, stage=stage), "ProposalRejected")


def _inquiry_outcome(file: CaseFile, command: Command, actor: Actor, rules: RuleSet) -> Transition:
    if command.choice not in INQUIRY_OUTCOMES:
        raise BadCommand(f"must be one of {sorted(INQUIRY_OUTCOMES)}", "choice")
    if command.choice == "second_inquiry" and file.inquiry_rounds >= 1:
        raise NotNow("a clue gets at most one second inquiry")
    # An unanswered letter is judged only by escalating: silence is no explanation.
    if file.inquiry_letter == "awaiting_reply" and command.choice != "escalate_to_verification":
        raise NotNow("the letter of inquiry is not answered yet: record the reply first")
    rounds = file.inquiry_rounds + (command.choice == "second_inquiry")
    entered = replace(file, inquiry_rounds=rounds, inquiry_letter="")
    after, team = _enter(entered, INQUIRY_OUTCOMES[command.choice])
    return _move(
        file,
        command,
        after,
        "InquiryConcluded",
        team_needed=team,
        clock_stopped=file.clock,
        clock_started=_entry_clock(after.stage, rules),
    )


def _send_inquiry_letter(
    file: CaseFile, command: Command, actor: Actor, rules: RuleSet
) -> Transition:
    if file.inquiry_letter:
        raise NotNow("this round's letter of inquiry has already been sent")
    after = replace(file, inquiry_letter="awaiting_reply")
    clock = "inquiry_reply" if "inquiry_reply" in rules.time_limits else ""
    return _move(file, command, after, "InquiryLetterSent", clock_started=clock)


def _record_inquiry_reply(
    file: CaseFile, command: Command, actor: Actor, rules: RuleSet
) -> Transition:
    if file.inquiry_letter != "awaiting_reply":
        raise NotNow("no letter of inquiry awaits a reply")
    after = replace(file, inquiry_letter="answered")
    return _move(file, command, after, "InquiryReplied", clock_stopped=file.clock)


def _review_stored(file: CaseFile, command: Command, actor: Actor, rules: RuleSet) -> Transition:
    choice = command.choice or "reopen"
    if choice not in STORED_REVIEWS:
        raise BadCommand(f"must be one of {sorted(STORED_REVIEWS)}", "choice")
    if choice == "keep":
        # Reviewed and kept: the next periodic review is due one period from now.
        return _move(
            file,
            command,
            file,
            "StoredClueReviewed",
            clock_stopped=file.clock,
            clock_started=_entry_clock("stored_pending", rules),
        )
    # A stored clue that comes back must be disposed of again, on a new clock.
    return _move(
        file,
        command,
        replace(file, stage="registered"),
        "StoredClueReviewed",
        clock_stopped=file.clock,
        clock_started="disposal",
    )


def _approve_plan(file: CaseFile, command: Command, actor: Actor, rules: RuleSet) -> Transition:
    approvals = (*file.plan_approvals, _required_role(file, "plan", rules))
    return _move(file, command, replace(file, plan_approvals=approvals), "PlanApproved")


def _plan_approved(file: CaseFile, rules: RuleSet) -> bool:
    table = "verification_plan" if file.stage == "verification" else "investigation_plan"
    return len(file.plan_approvals) == len(rules.approvers(table, file.subject_level))


def _sign_report(file: CaseFile, command: Command, actor: Actor, rules: RuleSet) -> Transition:
    if actor.person_id in file.signatures:
        raise NotNow(f"{actor.person_id} has already signed")
    after = replace(file, signatures=(*file.signatures, actor.person_id))
    return _move(file, command, after, "ReportSigned")


def _propose_outcome(file: CaseFile, command: Command, actor: Actor, rules: RuleSet) -> Transition:
    if command.choice not in VERIFICATION_PROPOSALS:
        raise BadCommand(f"must be one of {sorted(VERIFICATION_PROPOSALS)}", "choice")
    if not _plan_approved(file, rules):
        raise NotNow("the verification plan is not approved")
    unsigned = set(file.working_team) - set(file.signatures)
    if unsigned:
        raise NotNow(f"the report is not signed by {sorted(unsigned)}")
    chain = rules.approvers("verification_proposal", file.subject_level)
    proposal = Proposal(kind="verification_proposal", choice=command.choice, chain=chain)
    return _move(
        file,
        command,
        replace(file, stage="verification_proposed", pending=proposal),
        "VerificationProposed",
    )


def _approve_outcome(file: CaseFile, command: Command, actor: Actor, rules: RuleSet) -> Transition:
    proposal, complete = _approve(file, command, actor, rules)
    if not complete:
        return _approval_recorded(file, command, proposal)
    stage = VERIFICATION_PROPOSALS[proposal.choice]
    pending = None
    if stage == "filing_proposed":
        pending = Proposal("filing", "file_case", rules.approvers("filing", file.subject_level))
    investigators = _union(file.investigators, file.working_team)
    after = replace(file, stage=stage, pending=pending, investigators=investigators)
    transition = _move(
        file,
        command,
        after,
        "VerificationConcluded",
        clock_stopped=file.clock,
        clock_started=_entry_clock(stage, rules),
    )
    # The approved proposal, so consumers tell a reminder talk (four forms, 1) from a closure.
    transition.detail["outcome"] = proposal.choice
    return transition


def _approve_filing(file: CaseFile, command: Command, actor: Actor, rules: RuleSet) -> Transition:
    proposal, complete = _approve(file, command, actor, rules)
    if not complete:
        return _approval_recorded(file, command, proposal)
    after = replace(
        file,
        stage="investigation",
        pending=None,
        filed=True,
        plan_approvals=(),
        working_team=(),
        signatures=(),
        team_requested="investigation",
    )
    return _move(
        file,
        command,
        after,
        "CaseFiled",
        team_needed="investigation",
        clock_started="investigation",
    )


def _record_evidence(file: CaseFile, command: Command, actor: Actor, rules: RuleSet) -> Transition:
    if not command.description.strip():
        raise BadCommand("is required", "description")
    if not _SHA256.match(command.sha256):
        raise BadCommand("must be a lowercase hex SHA-256 digest", "sha256")
    if any(item.sha256 == command.sha256 for item in file.evidence):
        raise NotNow("this evidence item is already on the record")
    item = Evidence(command.description, command.sha256, actor.person_id)
    transition = _move(
        file, command, replace(file, evidence=(*file.evidence, item)), "EvidenceRecorded"
    )
    transition.detail["sha256"] = command.sha256
    return transition


def _subject_heard(file: CaseFile, command: Command, actor: Actor, rules: RuleSet) -> Transition:
    if not file.evidence:
        raise NotNow("the subject is heard on findings: record evidence first")
    return _move(file, command, replace(file, subject_heard=True), "SubjectHeard")


def _request_extension(
    file: CaseFile, command: Command, actor: Actor, rules: RuleSet
) -> Transition:
    rule = rules.extensions.get(file.stage)
    if rule is None or not file.clock:
        raise NotNow(f"the time limit of {file.stage} cannot be extended")
    if file.extension_requested:
        raise NotNow("an extension request is already pending")
    if file.extensions_of(file.stage) >= rule.max_count:
        raise NotNow(f"{file.stage} may be extended at most {rule.max_count} time(s)")
    if not 1 <= command.days <= rule.max_days:
        raise BadCommand(f"must be 1..{rule.max_days}", "days")
    if not command.reason:
        raise BadCommand("an extension request must give its reason", "reason")
    transition = _move(
        file, command, replace(file, extension_requested=command.days), "ExtensionRequested"
    )
    transition.detail["days"] = command.days
    return transition


def _approve_extension(
    file: CaseFile, command: Command, actor: Actor, rules: RuleSet
) -> Transition:
    used = dict(file.extensions_used)
    used[file.stage] = used.get(file.stage, 0) + 1
    days = file.extension_requested
    after = replace(file, extension_requested=0, extensions_used=tuple(sorted(used.items())))
    transition = _move(file, command, after, "ExtensionGranted", extended_days=days)
    transition.detail["days"] = days
    return transition


def _investigation_report(
    file: CaseFile, command: Command, actor: Actor, rules: RuleSet
) -> Transition:
    if not _plan_approved(file, rules):
        raise NotNow("the investigation plan is not approved")
    if "notify_unit" in rules.transitions and not file.unit_notified:
        raise NotNow("the subject's unit has not been told of the filing (notify_unit)")
    if not file.subject_heard:
        raise NotNow("the subject has not been heard on the findings")
    investigators = _union(file.investigators, file.working_team)
    # A file coming back from a send-back keeps its hearing team.
    team = "" if file.hearing_team else "hearing"
    after = replace(
        file,
        stage="hearing_pending",
        investigators=investigators,
        extension_requested=0,
        team_requested=team or file.team_requested,
    )
    return _move(file, command, after, team_needed=team, clock_stopped=file.clock)


def _accept_file(file: CaseFile, command: Command, actor: Actor, rules: RuleSet) -> Transition:
    return _move(
        file, command, replace(file, stage="hearing"), "FileAccepted", clock_started="hearing"
    )


def _defer_file(file: CaseFile, command: Command, actor: Actor, rules: RuleSet) -> Transition:
    if not command.reason:
        raise BadCommand("a deferral must say what is missing", "reason")
    return _move(file, command, file, "FileDeferred")


def _return_to_investigation(
    file: CaseFile, command: Command, actor: Actor, rules: RuleSet
) -> Transition:
    if not command.reason:
        raise BadCommand("must say what to re-investigate", "reason")
    after = replace(
        file,
        stage="investigation",
        send_backs=file.send_backs + 1,
        extension_requested=0,
    )
    return _move(
        file, command, after, "SentBack", clock_started="reinvestigation", clock_stopped=file.clock
    )


def _hearing_report(file: CaseFile, command: Command, actor: Actor, rules: RuleSet) -> Transition:
    if command.choice not in DECISION_KINDS:
        raise BadCommand(f"must be one of {sorted(DECISION_KINDS)}", "choice")
    sanctions = _check_sanctions(command, rules)
    measures = _check_measures(command.choice, command.measures, rules)
    chain = rules.approvers("decision", file.subject_level)
    proposal = Proposal("decision", command.choice, chain, sanctions=sanctions, measures=measures)
    hearers = _union(file.hearers, file.hearing_team)
    after = replace(
        file, stage="decision_proposed", pending=proposal, hearers=hearers, extension_requested=0
    )
    return _move(file, command, after, "HearingReported", clock_stopped=file.clock)


def _check_measures(kind: str, measures: tuple[str, ...], rules: RuleSet) -> tuple[str, ...]:
    if kind == "organisational_handling" and not measures:
        raise BadCommand("organisational handling names at least one measure", "measures")
    if measures and kind in NO_MEASURES:
        raise BadCommand(f"a {kind} carries no organisational measures", "measures")
    for index, measure in enumerate(measures):
        if measure not in rules.organisational_measures:
            raise BadCommand(
                f"must be one of {sorted(rules.organisational_measures)}", f"measures[{index}]"
            )
    if len(set(measures)) != len(measures):
        raise BadCommand("names a measure twice", "measures")
    return measures


def _check_sanctions(command: Command, rules: RuleSet) -> tuple[Sanction, ...]:
    rule = rules.decision_sanctions.get(command.choice)
    requires = rule.requires if rule else frozenset()
    allows = rule.allows if rule else frozenset()
    tracks = {sanction.track for sanction in command.sanctions}
    missing = sorted(requires - tracks)
    if missing:
        raise BadCommand(
            f"a {command.choice} names at least one {missing[0]} sanction", "sanctions"
        )
    if not allows and command.sanctions:
        raise BadCommand(f"a {command.choice} carries no sanctions", "sanctions")
    for index, sanction in enumerate(command.sanctions):
        if sanction.track not in allows:
            raise BadCommand(
                f"a {command.choice} carries no {sanction.track} sanction", f"sanctions[{index}]"
            )
    for index, sanction in enumerate(command.sanctions):
        if sanction.kind not in rules.sanction_effect_months.get(sanction.track, {}):
            raise BadCommand(
                f"unknown {sanction.track} sanction {sanction.kind!r}", f"sanctions[{index}]"
            )
    return command.sanctions


def _approve_decision(file: CaseFile, command: Command, actor: Actor, rules: RuleSet) -> Transition:
    proposal, complete = _approve(file, command, actor, rules)
    if not complete:
        return _approval_recorded(file, command, proposal)
    decision = Decision(
        proposal.choice,
        tuple((s, rules.sanction_months(s.track, s.kind)) for s in proposal.sanctions),
        proposal.measures,
    )
    stage = DECISION_KINDS[proposal.choice]
    after = replace(file, stage=stage, pending=None, decision=decision, decided_at=_moment(command))
    event = {"transferred": "CaseTransferred", "closed": "CaseCancelled"}.get(stage, "CaseDecided")
    transition = _move(file, command, after, event)
    transition.detail["decision"] = proposal.choice
    if proposal.measures:
        transition.detail["organisational_measures"] = list(proposal.measures)
    transition.detail["sanctions"] = [
        {"track": s.track, "kind": s.kind, "effect_months": months}
        for s, months in decision.sanctions
    ]
    return transition


def _notify_unit(file: CaseFile, command: Command, actor: Actor, rules: RuleSet) -> Transition:
    if not command.description.strip():
        raise BadCommand("names the unit (organisation) told of the filing", "description")
    if file.unit_notified:
        raise NotNow(f"the unit was notified already ({file.unit_notified})")
    after = replace(file, unit_notified=command.description.strip())
    return _move(file, command, after, "UnitNotified")


def _procuratorate_decision(
    file: CaseFile, command: Command, actor: Actor, rules: RuleSet
) -> Transition:
    if command.choice not in PROCURATORATE_DECISIONS:
        raise BadCommand(f"must be one of {sorted(PROCURATORATE_DECISIONS)}", "choice")
    if command.choice == "return_supplementary":
        # 退回补充调查: at most twice, one month each (art. 47).
        transition = _request_supplementary(file, command, actor, rules)
    else:
        after = replace(file, stage=PROCURATORATE_DECISIONS[command.choice])
        transition = _move(file, command, after, "ProcuratorateDecided")
    transition.detail["procuratorate"] = command.choice
    return transition


def _request_retention(
    file: CaseFile, command: Command, actor: Actor, rules: RuleSet
) -> Transition:
    if not rules.retention_body:
        raise NotNow(f"rule set {rules.version} names no body deciding retention")
    if file.retention == "in_force":
        if file.retention_extensions >= rules.max_retention_extensions:
            raise NotNow(
                f"retention may be extended at most {rules.max_retention_extensions} time(s)"
            )
        state = "extension_requested"
    elif file.retention:
        raise NotNow(f"retention is {file.retention.replace('_', ' ')}")
    else:
        state = "requested"
    if not command.reason:
        raise BadCommand("retention must give its grounds", "reason")
    meeting = _in_session(rules.retention_body, "retention", command, actor, rules)
    transition = _move(file, command, replace(file, retention=state), "RetentionRequested")
    transition.detail["meeting"] = meeting
    return transition


def _approve_retention(
    file: CaseFile, command: Command, actor: Actor, rules: RuleSet
) -> Transition:
    if file.retention not in ("requested", "extension_requested"):
        raise NotNow("no retention or extension of it awaits approval")
    extending = file.retention == "extension_requested"
    after = replace(
        file,
        retention="in_force",
        retention_extensions=file.retention_extensions + extending,
    )
    transition = _move(file, command, after, "RetentionApproved")
    if extending:
        months = rules.limit("retention_extension").months
        transition = replace(transition, side_extended_months=months)
        transition.detail["extended_months"] = months
    else:
        transition = replace(transition, side_clock_started="retention")
    return transition


def _end_retention(file: CaseFile, command: Command, actor: Actor, rules: RuleSet) -> Transition:
    if file.retention not in ("in_force", "extension_requested"):
        raise NotNow("nobody is held in retention on this case")
    after = replace(file, retention="ended")
    return replace(_move(file, command, after, "RetentionEnded"), side_clock_stopped="retention")


def _request_supplementary(
    file: CaseFile, command: Command, actor: Actor, rules: RuleSet
) -> Transition:
    if file.supplementary_rounds >= rules.max_supplementary_rounds:
        raise NotNow(f"at most {rules.max_supplementary_rounds} supplementary rounds")
    after = replace(file, stage="supplementary", supplementary_rounds=file.supplementary_rounds + 1)
    return _move(file, command, after, clock_started="supplementary")


def _complete_supplementary(
    file: CaseFile, command: Command, actor: Actor, rules: RuleSet
) -> Transition:
    return _move(file, command, replace(file, stage="transferred"), clock_stopped=file.clock)


def _moment(command: Command) -> str:
    return command.at.isoformat() if command.at is not None else ""


def _file_appeal(file: CaseFile, command: Command, actor: Actor, rules: RuleSet) -> Transition:
    if file.appeal_level >= 2:
        raise NotNow("both reviews have been decided")
    window = rules.time_limits.get("appeal_filing")
    if window is not None and window.months and file.decided_at and command.at is not None:
        # Within a month of receiving the decision / the first review's answer (art. 49),
        # counted on the county's dates.
        closes = rules.months_after(datetime.fromisoformat(file.decided_at), window.months)
        if command.at > closes:
            raise NotNow(f"the window to appeal closed at {closes.isoformat()}")
    stage = "appeal_first_review" if file.appeal_level == 0 else "appeal_second_review"
    after = replace(file, stage=stage, review_team=(), team_requested="review")
    transition = _move(
        file, command, after, "AppealFiled", team_needed="review", clock_started=stage
    )
    transition.detail["filed_by"] = "subject" if SUBJECT_ROLE in actor.roles else "staff"
    return transition


def _decide_appeal(file: CaseFile, command: Command, actor: Actor, rules: RuleSet) -> Transition:
    if command.choice not in APPEAL_OUTCOMES:
        raise BadCommand(f"must be one of {list(APPEAL_OUTCOMES)}", "choice")
    decision = file.decision
    if command.choice == "changed":
        # A changed outcome replaces the decision and its sanctions (复核机关…予以纠正).
        if command.decision not in CHANGED_DECISIONS:
            raise BadCommand(f"must be one of {sorted(CHANGED_DECISIONS)}", "decision")
        sanctions = _check_sanctions(replace(command, choice=command.decision), rules)
        measures = _check_measures(command.decision, command.measures, rules)
        decision = Decision(
            command.decision,
            tuple((s, rules.sanction_months(s.track, s.kind)) for s in sanctions),
            measures,
        )
    elif command.decision or command.sanctions or command.measures:
        raise BadCommand("an upheld decision stays as it was", "decision")
    after = replace(
        file,
        stage="decided",
        appeal_level=file.appeal_level + 1,
        decision=decision,
        decided_at=_moment(command) or file.decided_at,
    )
    transition = _move(file, command, after, "AppealDecided", clock_stopped=file.clock)
    transition.detail["level"] = "second_review" if file.appeal_level else "first_review"
    if command.choice == "changed" and decision is not None and file.decision is not None:
        transition.detail["previous_decision"] = file.decision.kind
        transition.detail["decision"] = decision.kind
        transition.detail["sanctions"] = [
            {"track": s.track, "kind": s.kind, "effect_months": months}
            for s, months in decision.sanctions
        ]
        if decision.measures:
            transition.detail["organisational_measures"] = list(decision.measures)
    return transition


_ACTIONS = {
    "propose_disposal": _propose_disposal,
    "approve_disposal": _approve_disposal,
    "reject_proposal": _reject,
    "record_inquiry_outcome": _inquiry_outcome,
    "send_inquiry_letter": _send_inquiry_letter,
    "record_inquiry_reply": _record_inquiry_reply,
    "review_stored": _review_stored,
    "approve_plan": _approve_plan,
    "sign_report": _sign_report,
    "propose_outcome": _propose_outcome,
    "approve_outcome": _approve_outcome,
    "approve_filing": _approve_filing,
    "record_evidence": _record_evidence,
    "record_subject_heard": _subject_heard,
    "request_extension": _request_extension,
    "approve_extension": _approve_extension,
    "submit_investigation_report": _investigation_report,
    "accept_file": _accept_file,
    "defer_file": _defer_file,
    "refuse_file": _return_to_investigation,
    "send_back": _return_to_investigation,
    "submit_hearing_report": _hearing_report,
    "approve_decision": _approve_decision,
    "request_supplementary": _request_supplementary,
    "notify_unit": _notify_unit,
    "request_retention": _request_retention,
    "approve_retention": _approve_retention,
    "end_retention": _end_retention,
    "record_procuratorate_decision": _procuratorate_decision,
    "complete_supplementary": _complete_supplementary,
    "file_appeal": _file_appeal,
    "decide_appeal": _decide_appeal,
}


def _union(first: tuple[str, ...], second: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(sorted(set(first) | set(second)))


def new_case_file(case_id: str, subject_level: str, rules: RuleSet) -> CaseFile:
    """A freshly registered clue, its disposal clock running."""
    return CaseFile(
        case_id=case_id, subject_level=subject_level, rule_version=rules.version, clock="disposal"
    )


def invariant_violations(file: CaseFile, rules: RuleSet) -> list[str]:
    """Every way the file contradicts the workflow's rules (empty for a valid file)."""
    problems: list[str] = []
    if file.stage not in rules.stages:
        problems.append(f"unknown stage {file.stage}")
    if (file.pending is not None) != file.stage.endswith("_proposed"):
        problems.append("a proposal is pending exactly in the *_proposed stages")
    if set(file.hearing_team) & set(file.investigators):
        problems.append("an investigator is on the hearing team")
    if set(file.review_team) & (set(file.investigators) | set(file.hearers)):
        problems.append("an investigator or hearer is on the review team")
    teams = set(file.working_team) | set(file.hearing_team) | set(file.review_team)
    if teams & set(file.recused):
        problems.append("a recused person is on a team")
    if not set(file.signatures) <= set(file.working_team):
        problems.append("a signature from outside the team")
    for stage, used in file.extensions_used:
        if used > rules.extensions[stage].max_count:
            problems.append(f"{stage} extended {used} times")
    if file.supplementary_rounds > rules.max_supplementary_rounds:
        problems.append("too many supplementary rounds")
    if file.stage in FILED_STAGES and not file.filed:
        problems.append(f"{file.stage} without a filed case")
    if (file.decision is not None) != (file.stage in DECIDED_STAGES or _cancelled(file)):
        problems.append("a decision exists exactly once the case is decided")
    if file.appeal_level > 2:
        problems.append("more than two reviews")
    if file.retention_extensions > rules.max_retention_extensions:
        problems.append("retention extended too often")
    if file.clock and file.clock not in rules.time_limits:
        problems.append(f"unknown clock {file.clock}")
    return problems


def _cancelled(file: CaseFile) -> bool:
    return file.stage == "closed" and file.decision is not None
