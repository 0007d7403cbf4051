"""ListCases' approvals inbox filter and CountCasesByStage over real gRPC on SQLite and PostgreSQL.

Both answer what a page would otherwise page through every visible file for; both keep the
visibility rules of ListCases and keep what they read on the audit record.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from typing import Any

import grpc
import pytest
from sqlmodel import col, select
from xiezuo.cases.v1 import cases_pb2

from services.cases.store import codec
from services.cases.store.tables import CaseFileRow
from services.runtime.audit import AuditEntry
from services.runtime.grpc.errors import field_violations
from tests.integration import test_cases_api
from tests.integration.helpers import register_case_clue
from tests.integration.test_cases_api import NOW, Api

api = test_cases_api.api


async def _propose(api: Api, who: Any, case_id: str) -> None:
    await api.stub.ActOnCase(
        cases_pb2.ActOnCaseRequest(
            idempotency_key=uuid.uuid4().hex,
            case_id=case_id,
            action="propose_disposal",
            choice="inquiry",
        ),
        metadata=who,
    )


async def _refusal(call: Any) -> tuple[grpc.StatusCode, list[tuple[str, str]]]:
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await call
    return failed.value.code(), field_violations(failed.value)


async def _audited(api: Api, actor: str, action: str) -> list[AuditEntry]:
    async with api.db.session() as session:
        rows = await session.exec(
            select(AuditEntry)
            .where(col(AuditEntry.actor) == actor, col(AuditEntry.action) == action)
            .order_by(col(AuditEntry.id))
        )
        return list(rows.all())


async def _move(api: Api, case_id: str, *, stage: str, filed: bool) -> None:
    """Put a file in a stage as the workflow would have left it (the count reads the row)."""
    async with api.db.transaction() as session:
        row = await session.get(CaseFileRow, case_id)
        assert row is not None
        row.state = codec.encode(replace(codec.decode(row.state), stage=stage, filed=filed))
        row.stage = stage
        session.add(row)


async def test_the_inbox_filter_lists_only_files_awaiting_the_callers_approval(api: Api) -> None:
    for case_id, zone in [("c-a", "z1"), ("c-b", "z1"), ("c-c", "z1"), ("c-z2", "z2")]:
        await register_case_clue(api.db, case_id, at=NOW, zone=zone)
    deputy, chief = api.as_("deputy", "deputy_chief"), api.as_("chief", "zone_chief")
    other_chief = api.as_("chief2", "zone_chief", zones=("z2",))
    await _propose(api, deputy, "c-a")
    await _propose(api, deputy, "c-c")
    await _propose(api, api.as_("deputy2", "deputy_chief", zones=("z2",)), "c-z2")

    async def inbox(who: Any, page_size: int = 0) -> list[tuple[str, list[str]]]:
        found: list[tuple[str, list[str]]] = []
        token = ""
        while True:
            page = await api.stub.ListCases(
                cases_pb2.ListCasesRequest(
                    county_id="c1",
                    awaiting_caller_approval=True,
                    page_size=page_size,
                    page_token=token,
                ),
                metadata=who,
            )
            found += [(c.case_id, list(c.caller_approvals)) for c in page.cases]
            token = page.next_page_token
            if not token:
                return found

    approvals = ["approve_disposal", "reject_proposal"]
    assert await inbox(chief) == [("c-a", approvals), ("c-c", approvals)]
    # Paged one at a time, the cursor skips the file in between that awaits nothing.
    assert [case_id for case_id, _ in await inbox(chief, page_size=1)] == ["c-a", "c-c"]
    # The deputy proposed them: nothing awaits the deputy. Another zone's chief sees only theirs.
    assert await inbox(deputy) == []
    assert await inbox(other_chief) == [("c-z2", approvals)]
    # Only what was returned is audited as read (the first call: c-a and c-c, not c-b).
    first = await _audited(api, "chief", "case.read")
    assert [entry.record_id for entry in first[:2]] == ["c-a", "c-c"]
    assert "c-b" not in {entry.record_id for entry in first}

    # A page token is bound to its filter; a bad page size is refused with its field.
    plain = await api.stub.ListCases(
        cases_pb2.ListCasesRequest(county_id="c1", page_size=1), metadata=chief
    )
    code, violations = await _refusal(
        api.stub.ListCases(
            cases_pb2.ListCasesRequest(
                county_id="c1", awaiting_caller_approval=True, page_token=plain.next_page_token
            ),
            metadata=chief,
        )
    )
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert [name for name, _ in violations] == ["page_token"]
    code, violations = await _refusal(
        api.stub.ListCases(
            cases_pb2.ListCasesRequest(awaiting_caller_approval=True, page_size=-1),
            metadata=chief,
        )
    )
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert sorted(name for name, _ in violations) == ["county_id", "page_size"]


async def test_counts_by_stage_cover_only_the_files_the_caller_may_see(api: Api) -> None:
    for case_id, zone in [("k-0", "z1"), ("k-1", "z1"), ("k-2", "z1"), ("k-3", "z1")]:
        await register_case_clue(api.db, case_id, at=NOW, zone=zone)
    await register_case_clue(api.db, "k-z2", at=NOW, zone="z2", township="t7")
    await _move(api, "k-1", stage="investigation", filed=True)
    # "closed" holds filed cases and clues closed without one: counted apart.
    await _move(api, "k-2", stage="closed", filed=True)
    await _move(api, "k-3", stage="closed", filed=False)
    leader = api.as_("lead", "county_leadership", zones=("*",))
    chief = api.as_("chief", "zone_chief")
    other_chief = api.as_("chief2", "zone_chief", zones=("z2",))
    officer = api.as_("officer", "case_officer")

    async def counts(who: Any, **filters: Any) -> tuple[dict[tuple[str, bool], int], int]:
        reply = await api.stub.CountCasesByStage(
            cases_pb2.CountCasesByStageRequest(county_id="c1", **filters), metadata=who
        )
        return {(c.stage, c.filed): c.count for c in reply.counts}, reply.total

    assert await counts(leader) == (
        {
            ("closed", False): 1,
            ("closed", True): 1,
            ("investigation", True): 1,
            ("registered", False): 2,
        },
        5,
    )
    assert await counts(leader, zone_id="z2") == ({("registered", False): 1}, 1)
    assert await counts(leader, township_id="t7") == ({("registered", False): 1}, 1)
    assert (await counts(chief))[1] == 4
    # Another zone's chief counts none of z1's files; an officer on no team counts nothing.
    assert await counts(other_chief) == ({("registered", False): 1}, 1)
    assert await counts(other_chief, zone_id="z1") == ({}, 0)
    assert await counts(officer) == ({}, 0)
    assert await counts(leader, overdue_only=True) == ({}, 0)

    # One audit entry per call says who counted what, with which filter; no file is "read".
    counted = await _audited(api, "chief2", "case.counted")
    assert len(counted) == 2
    assert (counted[0].record_type, counted[0].record_id) == ("county", "c1")
    assert json.loads(counted[0].detail) == {"filter": {}, "counts": {"registered": 1}}
    assert json.loads(counted[1].detail) == {"filter": {"zone_id": "z1"}, "counts": {}}
    assert await _audited(api, "chief2", "case.read") == []
    [leader_first, *_] = await _audited(api, "lead", "case.counted")
    assert json.loads(leader_first.detail)["counts"] == {
        "closed": 1,
        "closed/filed": 1,
        "investigation/filed": 1,
        "registered": 2,
    }

    code, violations = await _refusal(
        api.stub.CountCasesByStage(cases_pb2.CountCasesByStageRequest(), metadata=leader)
    )
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert [name for name, _ in violations] == ["county_id"]
    code, _ = await _refusal(
        api.stub.CountCasesByStage(
            cases_pb2.CountCasesByStageRequest(county_id="c2"), metadata=leader
        )
    )
    assert code is grpc.StatusCode.PERMISSION_DENIED
