"""Everything intake's gRPC calls work with, built once by app.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeAlias

import grpc

from services.intake.domain.rulebook import RuleBook
from services.intake.store.acceptance import AcceptanceDesk
from services.intake.store.duplicates import DuplicateDesk
from services.intake.store.exchange import ReporterChannel
from services.intake.store.receipts import ReceiptDesk
from services.intake.store.report_reader import ReportReader
from services.intake.store.reports import ReportRegistry
from services.intake.store.result_feedback import ResultDesk
from services.intake.store.reveals import RevealDesk
from services.intake.store.townships import TownshipRegistry
from services.runtime.grpc.errors import ServiceError

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


def wall_clock() -> datetime:
    """The current moment in UTC."""
    return datetime.now(UTC)


class ReceiptLocked(ServiceError):
    """Receipt guessing was locked out (rate limit)."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


@dataclass(frozen=True)
class IntakeParts:
    """The stores and rules behind intake's calls."""

    rule_book: RuleBook
    registry: ReportRegistry
    reports: ReportReader
    receipts: ReceiptDesk
    channel: ReporterChannel
    reveals: RevealDesk
    acceptance: AcceptanceDesk
    duplicates: DuplicateDesk
    townships: TownshipRegistry
    # How far back a back-entry (补录) may date a registration (platform setting).
    back_entry_days: int = 400
    # Telling the result after closure; optional so parts built before it keep working.
    results: ResultDesk | None = None
    # What "now" is when a submission is checked (a test sets the hour of the county's day).
    clock: Callable[[], datetime] = wall_clock
