"""Composition root of the collaboration service: the only place its parts are built and wired."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

import grpc
from xiezuo.collaboration.v1 import (
    collaboration_pb2,
    collaboration_pb2_grpc,
    joint_cases_pb2,
    joint_cases_pb2_grpc,
    transfers_pb2,
    transfers_pb2_grpc,
)

from services.collaboration.api.joint_cases import JointCaseServicer
from services.collaboration.api.servicer import CollaborationServicer
from services.collaboration.api.transfers import TransferServicer
from services.collaboration.domain.joint_case import parse_joint_rules
from services.collaboration.domain.letter_kinds import parse_letter_kinds
from services.collaboration.domain.transfer_rules import parse_transfer_rules
from services.collaboration.due_dates import DueDateScan
from services.collaboration.handlers.joint_cases import JointRecordHandler, TeamDrawnHandler
from services.collaboration.handlers.letters import LetterRecordHandler
from services.collaboration.handlers.transfer_outcomes import OutcomeReceiver, OutcomeReporter
from services.collaboration.handlers.transfers import TransferRecordHandler
from services.collaboration.joint_cases import JointCaseDesk
from services.collaboration.letters import LetterDesk
from services.collaboration.metrics import LetterMetrics
from services.collaboration.settings import CollaborationSettings
from services.collaboration.signing_keys import CountySigningKeys
from services.collaboration.store.received_records import ReceivedRecords
from services.collaboration.transfers import TransferDesk
from services.contracts.cases import (
    CaseClosed,
    CaseDecided,
    CaseFiled,
    CaseTransferred,
    ClueDisposed,
    ExtensionGranted,
    StageChanged,
)
from services.contracts.collaboration import (
    JointCaseAccepted,
    JointCaseClosed,
    JointCaseDeclined,
    JointCaseOpened,
    JointShareDrawn,
    LetterAccepted,
    LetterAnswered,
    LetterDeclined,
    LetterSent,
)
from services.contracts.staffing import AssistanceTeamDrawn
from services.contracts.transfers import ClueTransferred, TransferOutcome
from services.runtime.host import GrpcParts, ServiceHost
from services.runtime.settings import Settings

log = logging.getLogger(__name__)
SERVICE_NAME = collaboration_pb2.DESCRIPTOR.services_by_name["CollaborationService"].full_name
TRANSFER_SERVICE_NAME = transfers_pb2.DESCRIPTOR.services_by_name["TransferService"].full_name
JOINT_SERVICE_NAME = joint_cases_pb2.DESCRIPTOR.services_by_name["JointCaseService"].full_name


def build(
    settings: Settings, own: CollaborationSettings | None = None
) -> tuple[ServiceHost, GrpcParts, DueDateScan]:
    """Wire collaboration: signed letter records in and out, letters over gRPC."""
    own = own or CollaborationSettings()
    host = ServiceHost(settings)
    kinds = parse_letter_kinds(own.letter_kinds_file.read_text(encoding="utf-8"))
    keys = CountySigningKeys.load(own.signing_key_files, settings.platform.state_dir / "keys")
    desk = LetterDesk(kinds=kinds, keys=keys)
    metrics = LetterMetrics(host.metrics.registry)
    receiver = LetterRecordHandler(desk, metrics)
    # Records from other counties: an id seen before is a replay, dead-lettered, not skipped;
    # the very record delivered again (at-least-once, a mirror restarting) is acknowledged.
    received = ReceivedRecords()
    for record in (LetterSent, LetterAccepted, LetterDeclined, LetterAnswered):
        host.consumer.on(record, receiver, replay_is_poison=True, ledger=received)
    transfer_rules = parse_transfer_rules(own.transfer_rules_file.read_text(encoding="utf-8"))
    host.consumer.on(
        ClueTransferred,
        TransferRecordHandler(desk, transfer_rules),
        replay_is_poison=True,
        ledger=received,
    )
    # The sending county's read-only trail: steps of transferred clues go back, verified there.
    host.consumer.on(TransferOutcome, OutcomeReceiver(desk), replay_is_poison=True, ledger=received)
    reporter = OutcomeReporter(desk)
    for step in (
        StageChanged,
        ClueDisposed,
        CaseFiled,
        ExtensionGranted,
        CaseDecided,
        CaseTransferred,
        CaseClosed,
    ):
        host.consumer.on(step, reporter)
    # Joint investigations: verified like letters; a replayed id is dead-lettered.
    joint_rules = parse_joint_rules(own.joint_rules_file.read_text(encoding="utf-8"))
    joint_desk = JointCaseDesk(keys=keys, rules=joint_rules)
    joint = JointRecordHandler(joint_desk)
    for joint_record in (
        JointCaseOpened,
        JointCaseAccepted,
        JointCaseDeclined,
        JointCaseClosed,
        JointShareDrawn,
    ):
        host.consumer.on(joint_record, joint, replay_is_poison=True, ledger=received)
    # The team this county's staffing drew: a joint case's share (sent across), or a letter's.
    host.consumer.on(AssistanceTeamDrawn, TeamDrawnHandler(joint_desk))
    servicer = CollaborationServicer(
        host.database, desk, metrics, back_entry_days=settings.platform.back_entry_days
    )
    transfers = TransferServicer(host.database, TransferDesk(rules=transfer_rules, keys=keys))
    joint_servicer = JointCaseServicer(host.database, joint_desk)

    def register(server: grpc.aio.Server) -> None:
        collaboration_pb2_grpc.add_CollaborationServiceServicer_to_server(servicer, server)
        transfers_pb2_grpc.add_TransferServiceServicer_to_server(transfers, server)
        joint_cases_pb2_grpc.add_JointCaseServiceServicer_to_server(joint_servicer, server)

    scan = DueDateScan(host.database, desk, metrics)
    return (
        host,
        GrpcParts(
            service_names=[SERVICE_NAME, TRANSFER_SERVICE_NAME, JOINT_SERVICE_NAME],
            register=register,
        ),
        scan,
    )


async def scan_due_dates(scan: DueDateScan, stop: asyncio.Event, interval: float) -> None:
    """Run a due-date pass every `interval` seconds until `stop`."""
    # Waits first: the host migrates the database on start.
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
        if stop.is_set():
            return
        try:
            await scan.scan(now=datetime.now(UTC))
        except Exception:
            # The next pass retries from the rows; a failed pass must not stop the service.
            log.exception("letter due-date scan failed")


async def run(settings: Settings, stop: asyncio.Event) -> None:
    """Run collaboration until `stop` is set."""
    host, grpc_parts, scan = build(settings)
    interval = CollaborationSettings().due_scan_seconds
    scanning = asyncio.create_task(
        scan_due_dates(scan, stop, interval), name="collaboration-due-dates"
    )
    try:
        await host.run(grpc_parts, stop)
    finally:
        stop.set()
        await scanning
