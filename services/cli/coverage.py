"""Which `xiezuo` command calls each RPC: every method of every service has one.

tests/unit/test_cli_coverage.py checks this table against the proto descriptors and the
command tree, so a new RPC without a command (or a renamed command) fails the build.
"""

from __future__ import annotations

INTAKE = "xiezuo.intake.v1.IntakeService"
CASES = "xiezuo.cases.v1.CaseService"
STAFFING = "xiezuo.staffing.v1.StaffingService"
REGISTRY = "xiezuo.staffing.v1.RegistryService"
TRAINING = "xiezuo.staffing.v1.TrainingService"
ASSESSMENT = "xiezuo.assessment.v1.AssessmentService"
COLLABORATION = "xiezuo.collaboration.v1.CollaborationService"
TRANSFERS = "xiezuo.collaboration.v1.TransferService"
JOINT = "xiezuo.collaboration.v1.JointCaseService"

# Full RPC name → the command path after `xiezuo`.
COMMAND_OF_RPC: dict[str, str] = {
    f"{INTAKE}.SubmitReport": "reports submit",
    f"{INTAKE}.GetReportStatus": "reports status",
    f"{INTAKE}.SendReporterMessage": "reports message",
    f"{INTAKE}.ListReporterMessages": "reports messages",
    f"{INTAKE}.AddInformation": "reports add-info",
    f"{INTAKE}.RequestIdentityReveal": "reports reveal-identity request",
    f"{INTAKE}.DecideIdentityReveal": "reports reveal-identity decide",
    f"{INTAKE}.RevealIdentity": "reports reveal-identity read",
    # One RPC, three commands (accept, reject, forward): the outcome names the command.
    f"{INTAKE}.DecideAcceptance": "reports accept",
    f"{INTAKE}.ListDuplicateCandidates": "reports duplicates",
    f"{INTAKE}.DecideDuplicate": "reports duplicate",
    f"{INTAKE}.RecordResultFeedback": "reports feedback",
    f"{CASES}.GetClue": "clues show",
    f"{CASES}.ListClues": "clues list",
    # `clues dispose` proposes a disposal through the same RPC.
    f"{CASES}.ActOnCase": "cases advance",
    f"{CASES}.GetCase": "cases show",
    f"{CASES}.ListCases": "cases list",
    f"{CASES}.CountCasesByStage": "cases counts",
    f"{CASES}.OpenRectification": "rectification open",
    f"{CASES}.ReportRectificationProgress": "rectification progress",
    f"{CASES}.VerifyRectification": "rectification verify",
    f"{CASES}.GetRectification": "rectification show",
    f"{CASES}.ListRectifications": "rectification list",
    f"{CASES}.LinkRelatedClues": "cases link",
    f"{CASES}.DeclareJointCase": "cases joint townships",
    f"{STAFFING}.ExplainDraw": "draws explain",
    f"{STAFFING}.ReplayDraw": "draws replay",
    f"{STAFFING}.GetPerson": "people show",
    f"{STAFFING}.ListPeople": "people list",
    f"{STAFFING}.DeclareConflict": "conflicts declare",
    f"{STAFFING}.RequestRecusal": "recusal request",
    f"{STAFFING}.DecideRecusal": "recusal decide",
    f"{STAFFING}.AcceptAssignment": "assignments accept",
    f"{STAFFING}.DeclineAssignment": "assignments decline",
    f"{STAFFING}.OverrideDraw": "draws override",
    f"{REGISTRY}.CreatePerson": "people create",
    f"{REGISTRY}.UpdatePerson": "people update",
    f"{REGISTRY}.GetZone": "zones show",
    f"{REGISTRY}.ListZones": "zones list",
    f"{REGISTRY}.UpdateZone": "zones update",
    f"{REGISTRY}.ListTownships": "townships list",
    f"{REGISTRY}.PlaceTownship": "townships place",
    f"{REGISTRY}.ListRegistryChanges": "registry changes",
    f"{TRAINING}.RecordTraining": "training record",
    f"{TRAINING}.ListTraining": "training list",
    f"{TRAINING}.RecordAttendance": "attendance record",
    f"{TRAINING}.ListAttendance": "attendance list",
    f"{ASSESSMENT}.GetScorecard": "scores show",
    # `xiezuo ranking PERIOD ...` runs `ranking show`.
    f"{ASSESSMENT}.GetRanking": "ranking show",
    # Also `ranking explain` (the same command).
    f"{ASSESSMENT}.ExplainScore": "scores explain",
    f"{ASSESSMENT}.RecordQualitativeScore": "scores mark",
    f"{ASSESSMENT}.DefinePlan": "plans define",
    f"{ASSESSMENT}.GetPlanProgress": "plans progress",
    f"{ASSESSMENT}.CloseQuarter": "assessment close-quarter",
    f"{ASSESSMENT}.ExportReport": "assessment export",
    f"{ASSESSMENT}.DefineCampaign": "campaigns define",
    f"{ASSESSMENT}.GetCampaignView": "campaigns show",
    f"{ASSESSMENT}.ListCampaigns": "campaigns list",
    f"{COLLABORATION}.RequestLetter": "letters send",
    f"{COLLABORATION}.ApproveLetter": "letters approve",
    # One RPC, two commands (accept, decline): the decision names the command.
    f"{COLLABORATION}.DecideLetter": "letters accept",
    f"{COLLABORATION}.AnswerLetter": "letters answer",
    f"{COLLABORATION}.GetLetter": "letters show",
    f"{COLLABORATION}.ListLetters": "letters list",
    f"{COLLABORATION}.GetNetwork": "collaboration network show",
    f"{TRANSFERS}.TransferClue": "clues transfer",
    f"{TRANSFERS}.DesignateJurisdiction": "cases designate",
    f"{TRANSFERS}.GetTransferTrail": "clues trail",
    f"{JOINT}.OpenJointCase": "cases joint open",
    f"{JOINT}.AcceptJointCase": "cases joint accept",
    f"{JOINT}.GetJointCase": "cases joint show",
    f"{JOINT}.OpenCityJointCase": "cases joint city-open",
    f"{JOINT}.DeclineJointCase": "cases joint decline",
    f"{JOINT}.CloseJointCase": "cases joint close",
    f"{JOINT}.ListJointCases": "cases joint list",
}
