"""GetCase and ListCases over real gRPC name what the rule set lets the caller do on a file now."""

from __future__ import annotations

import uuid

from xiezuo.cases.v1 import cases_pb2

from tests.integration import test_cases_api
from tests.integration.helpers import register_case_clue
from tests.integration.test_cases_api import NOW, Api

api = test_cases_api.api


async def test_a_proposed_disposal_awaits_the_zone_chief_and_offers_the_deputy_nothing(
    api: Api,
) -> None:
    await register_case_clue(api.db, "clue-oa", at=NOW)
    deputy, chief = api.as_("d", "deputy_chief"), api.as_("z", "zone_chief")
    before = await api.stub.GetCase(cases_pb2.GetCaseRequest(case_id="clue-oa"), metadata=deputy)
    assert "propose_disposal" in before.open_actions and not before.case.caller_approvals
    await api.stub.ActOnCase(
        cases_pb2.ActOnCaseRequest(
            idempotency_key=uuid.uuid4().hex,
            case_id="clue-oa",
            action="propose_disposal",
            choice="inquiry",
        ),
        metadata=deputy,
    )
    by_chief = await api.stub.GetCase(cases_pb2.GetCaseRequest(case_id="clue-oa"), metadata=chief)
    assert list(by_chief.open_actions) == ["approve_disposal", "reject_proposal"]
    listed = await api.stub.ListCases(cases_pb2.ListCasesRequest(county_id="c1"), metadata=chief)
    [summary] = [case for case in listed.cases if case.case_id == "clue-oa"]
    assert list(summary.caller_approvals) == ["approve_disposal", "reject_proposal"]
    by_deputy = await api.stub.ListCases(
        cases_pb2.ListCasesRequest(county_id="c1"), metadata=deputy
    )
    [mine] = [case for case in by_deputy.cases if case.case_id == "clue-oa"]
    assert not mine.caller_approvals
