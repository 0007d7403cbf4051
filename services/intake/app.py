"""Composition root of the intake service: the only place its parts are built and wired."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

import grpc
from xiezuo.intake.v1 import intake_pb2, intake_pb2_grpc

from services.contracts.cases import (
    CaseClosed,
    CaseDecided,
    CaseFiled,
    CaseStepRecorded,
    CaseTransferred,
    ClueDisposed,
    ExtensionGranted,
    StageChanged,
)
from services.contracts.staffing import TownshipPlaced
from services.intake.api.parts import IntakeParts
from services.intake.api.servicer import IntakeServicer
from services.intake.domain.receipt import ReceiptKeys
from services.intake.handlers.case_progress import CaseProgressHandler
from services.intake.handlers.township_placed import on_township_placed
from services.intake.settings import IntakeSettings
from services.intake.store.acceptance import AcceptanceDesk
from services.intake.store.duplicates import DuplicateDesk
from services.intake.store.exchange import ReporterChannel
from services.intake.store.receipts import ReceiptDesk
from services.intake.store.report_reader import ReportReader
from services.intake.store.reports import ReportRegistry
from services.intake.store.result_feedback import ResultDesk
from services.intake.store.reveals import RevealDesk
from services.intake.store.rule_files import load_rule_book
from services.intake.store.townships import TownshipRegistry
from services.intake.store.vault import Vault, read_key_file
from services.runtime.host import GrpcParts, ServiceHost
from services.runtime.settings import Settings
from services.working_calendar.settings import county_calendar, coverage_warnings

# Cases' workflow steps a reporter hears of (as in progress or concluded, nothing finer).
CASE_PROGRESS_EVENTS: tuple[type[CaseStepRecorded], ...] = (
    ClueDisposed,
    CaseFiled,
    StageChanged,
    ExtensionGranted,
    CaseDecided,
    CaseTransferred,
    CaseClosed,
)
SERVICE_NAME = intake_pb2.DESCRIPTOR.services_by_name["IntakeService"].full_name
log = logging.getLogger(__name__)


def vault_for(settings: Settings, own: IntakeSettings | None = None) -> Vault:
    """The configured key-encryption key, or a generated dev key under the state dir."""
    platform = settings.platform
    own = own or IntakeSettings()
    key_file = platform.vault_key_file or Vault.ensure_dev_key(
        platform.state_dir / "keys" / "intake-vault-kek.hex"
    )
    return Vault.from_key_file(key_file, retired=own.vault_retired_key_files)


def receipt_keys_for(settings: Settings, own: IntakeSettings | None = None) -> ReceiptKeys:
    """The configured receipt key (and retired ones), or a generated dev key under the state dir."""
    own = own or IntakeSettings()
    key_file = own.receipt_key_file or Vault.ensure_dev_key(
        settings.platform.state_dir / "keys" / "intake-receipt-key.hex"
    )
    return ReceiptKeys(
        read_key_file(key_file),
        retired=[read_key_file(path) for path in own.receipt_retired_key_files],
    )


def build(settings: Settings) -> tuple[ServiceHost, GrpcParts, IntakeParts]:
    """Wire intake: vault, rules and stores over the host's database, one gRPC servicer."""
    host = ServiceHost(settings)
    own = IntakeSettings()
    # The county's one working calendar, shared with cases (XIEZUO_WORKING_CALENDAR_FILE).
    calendar = county_calendar()
    for warning in coverage_warnings(calendar, calendar.local_date(datetime.now(UTC))):
        log.warning("%s", warning)
    rule_book = load_rule_book(own.rules_dir, calendar)
    vault = vault_for(settings, own)
    receipt_keys = receipt_keys_for(settings, own)
    database = host.database
    parts = IntakeParts(
        rule_book=rule_book,
        registry=ReportRegistry(database, vault, rule_book, receipt_keys),
        reports=ReportReader(database),
        receipts=ReceiptDesk(database, rule_book, receipt_keys),
        channel=ReporterChannel(database, vault),
        reveals=RevealDesk(database, vault),
        acceptance=AcceptanceDesk(database, vault),
        duplicates=DuplicateDesk(database, rule_book),
        townships=TownshipRegistry(database),
        back_entry_days=settings.platform.back_entry_days,
        results=ResultDesk(database, vault),
    )
    host.consumer.on(TownshipPlaced, on_township_placed)
    progress = CaseProgressHandler(vault, rule_book)
    for step in CASE_PROGRESS_EVENTS:
        host.consumer.on(step, progress)
    servicer = IntakeServicer(parts)

    def register(server: grpc.aio.Server) -> None:
        intake_pb2_grpc.add_IntakeServiceServicer_to_server(servicer, server)

    return host, GrpcParts(service_names=[SERVICE_NAME], register=register), parts


async def scan_feedback_deadlines(
    acceptance: AcceptanceDesk,
    stop: asyncio.Event,
    interval: float,
    results: ResultDesk | None = None,
) -> None:
    """Publish feedback-deadline breaches (acceptance and result) every `interval` seconds."""
    # Waits first: the host migrates the database on start.
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
        if stop.is_set():
            return
        try:
            now = datetime.now(UTC)
            await acceptance.scan_feedback_deadlines(now=now)
            if results is not None:
                await results.scan_result_deadlines(now=now)
        except Exception:
            # The next pass retries; a failed scan must not take the service down.
            log.exception("feedback deadline scan failed")


async def run(settings: Settings, stop: asyncio.Event) -> None:
    """Run intake until `stop` is set."""
    host, grpc_parts, parts = build(settings)
    interval = IntakeSettings().feedback_scan_seconds
    scanner = asyncio.create_task(
        scan_feedback_deadlines(parts.acceptance, stop, interval, parts.results)
    )
    try:
        await host.run(grpc_parts, stop)
    finally:
        stop.set()
        await scanner
