"""The registry's change history: one row per change, with the record before and after."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.runtime import audit
from services.staffing.domain.registry_edits import changed_fields
from services.staffing.store.records_tables import RegistryChangeRow


async def record_change(
    session: AsyncSession,
    *,
    county_id: str,
    record_type: str,
    record_id: str,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any],
    changed_by: str,
    at: datetime,
) -> RegistryChangeRow | None:
    """Keep the change (if anything changed) in history and the audit log."""
    fields = changed_fields(before, after)
    if not fields:
        return None
    action = "created" if before is None else "updated"
    change = RegistryChangeRow(
        county_id=county_id,
        record_type=record_type,
        record_id=record_id,
        action=action,
        fields=json.dumps(fields),
        before=json.dumps(before, sort_keys=True, ensure_ascii=False) if before else None,
        after=json.dumps(after, sort_keys=True, ensure_ascii=False),
        changed_by=changed_by,
        changed_at=at,
    )
    session.add(change)
    await session.flush()
    await audit.append(
        session,
        county_id=county_id,
        actor=changed_by,
        action=f"registry.{record_type}.{action}",
        record_type=record_type,
        record_id=record_id,
        detail={"fields": fields, "change_id": change.change_id},
        at=at,
    )
    return change


def fields_of(change: RegistryChangeRow | None) -> list[str]:
    """The names of the fields a change changed."""
    return [str(name) for name in json.loads(change.fields)] if change else []


async def changes_page(
    session: AsyncSession, *, record_type: str, record_id: str, after: int, limit: int
) -> list[RegistryChangeRow]:
    """A record's changes, oldest first, after a change id."""
    query = (
        select(RegistryChangeRow)
        .where(
            RegistryChangeRow.record_type == record_type,
            RegistryChangeRow.record_id == record_id,
            col(RegistryChangeRow.change_id) > after,
        )
        .order_by(col(RegistryChangeRow.change_id))
        .limit(limit)
    )
    return list((await session.exec(query)).all())
