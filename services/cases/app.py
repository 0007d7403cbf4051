"""Composition root of the cases service: the only place its parts are built and wired."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace
from datetime import UTC, datetime

import grpc
from xiezuo.cases.v1 import cases_pb2, cases_pb2_grpc

from services.cases.api.servicer import CaseServicer
from services.cases.deadline_gauges import DeadlineGauges
from services.cases.domain.rules import DEFAULT_RULES, rules_in_force
from services.cases.domain.ruleset import RuleSet
from services.cases.handlers.assistance import on_assistance_answered
from services.cases.handlers.clue_registered import ClueRegisteredHandler
from services.cases.handlers.joint_case import on_joint_case_noted
from services.cases.handlers.report_linked import ReportLinkedHandler
from services.cases.handlers.teams import RecusalHandler, on_team_assigned, on_team_unfillable
from services.cases.handlers.transferred_clue import TransferredClueHandler
from services.cases.settings import CasesSettings
from services.cases.store.case_reader import CaseReader
from services.cases.store.clues import ClueReader
from services.cases.store.deadline_scan import DeadlineScanner
from services.cases.store.links import ClueLinks
from services.cases.store.rectification import RectificationDesk
from services.cases.store.workflow import Workflow
from services.contracts.collaboration import AssistanceAnswered, JointCaseNoted
from services.contracts.intake import ClueRegistered, ReportLinked
from services.contracts.staffing import RecusalRecorded, TeamAssigned, TeamUnfillable
from services.contracts.transfers import TransferredClueArrived
from services.runtime.host import GrpcParts, ServiceHost
from services.runtime.settings import Settings
from services.working_calendar.settings import county_calendar, coverage_warnings

SERVICE_NAME = cases_pb2.DESCRIPTOR.services_by_name["CaseService"].full_name
log = logging.getLogger(__name__)
# Deadlines move in days; a gauge read every 30 s is current enough to page on.
DEADLINE_GAUGE_SECONDS = 30.0


def build(settings: Settings) -> tuple[ServiceHost, GrpcParts, DeadlineScanner]:
    """Wire cases: clues from intake, teams from staffing, the workflow and reads over gRPC."""
    host = ServiceHost(settings)
    own = CasesSettings()
    # Every version counts working days on the county's one calendar (shared with intake).
    calendar = county_calendar()
    for warning in coverage_warnings(calendar, calendar.local_date(datetime.now(UTC))):
        log.warning("%s", warning)
    rule_versions: list[RuleSet] = [replace(DEFAULT_RULES, calendar=calendar)]
    clues = ClueRegisteredHandler(rule_versions)
    host.consumer.on(ClueRegistered, clues, batch_handler=clues.apply_batch)
    host.consumer.on(TeamAssigned, on_team_assigned)
    host.consumer.on(TeamUnfillable, on_team_unfillable)
    database = host.database
    by_version = {rules.version: rules for rules in rule_versions}
    host.consumer.on(RecusalRecorded, RecusalHandler(by_version))
    host.consumer.on(ReportLinked, ReportLinkedHandler(by_version, lock=not database.is_sqlite))
    # Another county's verified answer to a letter asked from a case: a step in its history.
    host.consumer.on(AssistanceAnswered, on_assistance_answered)
    # A joint case with another county this county's case is worked in: its steps and team.
    host.consumer.on(JointCaseNoted, on_joint_case_noted)
    # A clue another county transferred here, or the city designated here: a new clue.
    host.consumer.on(TransferredClueArrived, TransferredClueHandler(clues))

    def in_force(moment: datetime) -> RuleSet:
        return rules_in_force(rule_versions, calendar.local_date(moment))

    servicer = CaseServicer(
        ClueReader(database),
        CaseReader(database),
        Workflow(database, by_version),
        back_entry_days=settings.platform.back_entry_days,
        rectifications=RectificationDesk(database, in_force),
        links=ClueLinks(database, by_version),
    )
    scanner = DeadlineScanner(database, batch_size=own.deadline_scan_batch)
    gauges = DeadlineGauges(database, host.metrics.registry)
    host.probes.add("deadlines", gauges.refresh, interval=DEADLINE_GAUGE_SECONDS)

    def register(server: grpc.aio.Server) -> None:
        cases_pb2_grpc.add_CaseServiceServicer_to_server(servicer, server)

    return host, GrpcParts(service_names=[SERVICE_NAME], register=register), scanner


async def scan_deadlines(scanner: DeadlineScanner, stop: asyncio.Event, interval: float) -> None:
    """Run a deadline pass every `interval` seconds until `stop`."""
    # Waits first: the host migrates the database on start.
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
        if stop.is_set():
            return
        try:
            await scanner.scan(now=datetime.now(UTC))
        except Exception:
            # The next pass retries from the rows; a failed pass must not stop the service.
            log.exception("deadline scan failed")


async def run(settings: Settings, stop: asyncio.Event) -> None:
    """Run cases until `stop` is set."""
    host, grpc_parts, scanner = build(settings)
    interval = CasesSettings().deadline_scan_seconds
    scanning = asyncio.create_task(scan_deadlines(scanner, stop, interval), name="cases-deadlines")
    try:
        await host.run(grpc_parts, stop)
    finally:
        stop.set()
        await scanning
