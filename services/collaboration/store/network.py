"""Network versions: import one (refusing an old version), read the one in force."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.collaboration.domain.network import Network
from services.collaboration.store.tables import NetworkVersionRow
from services.runtime import audit


class VersionNotNewer(Exception):
    """The file's version is not above the one in force."""


async def current_network(session: AsyncSession) -> Network | None:
    """The network in force (the highest imported version), if any was imported."""
    row = (
        await session.exec(
            select(NetworkVersionRow).order_by(col(NetworkVersionRow.version).desc()).limit(1)
        )
    ).first()
    return None if row is None else Network.from_json(row.body)


async def import_network(
    session: AsyncSession, network: Network, *, sha256: str, actor: str
) -> None:
    """Store a new version in the caller's transaction, audited in every member county."""
    current = await current_network(session)
    if current is not None and network.version <= current.version:
        raise VersionNotNewer(
            f"version {network.version} is not newer than version {current.version} in force"
        )
    now = datetime.now(UTC)
    session.add(
        NetworkVersionRow(
            version=network.version,
            network_id=network.network_id,
            body=network.to_json(),
            source_sha256=sha256,
            imported_by=actor,
            imported_at=now,
        )
    )
    # County order: two transactions auditing several counties never wait on each other.
    for county_id in sorted(county.county_id for county in network.counties):
        await audit.append(
            session,
            county_id=county_id,
            actor=actor,
            action="network.imported",
            record_type="network",
            record_id=f"{network.network_id}@{network.version}",
            detail={"sha256": sha256, "counties": len(network.counties)},
            at=now,
        )
