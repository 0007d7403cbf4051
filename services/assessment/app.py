"""Composition root of the assessment service: the only place its parts are built and wired."""

from __future__ import annotations

import asyncio

import grpc
from xiezuo.assessment.v1 import assessment_pb2, assessment_pb2_grpc

from services.assessment.api.servicer import AssessmentServicer
from services.assessment.domain.four_forms import load_four_forms
from services.assessment.domain.quarter import AssessmentCalendar
from services.assessment.domain.scoring_rules import load_rules
from services.assessment.handlers.mappers import projections
from services.assessment.handlers.projection import register_handlers
from services.assessment.rebuild import ProjectionRebuild, Subscriptions
from services.assessment.store.scorecards import Scoring
from services.runtime.db import Database
from services.runtime.host import GrpcParts, ServiceHost
from services.runtime.inbox import EventConsumer
from services.runtime.kafka_security import client_kwargs
from services.runtime.outbox import KafkaEventProducer
from services.runtime.settings import Settings

SERVICE_NAME = assessment_pb2.DESCRIPTOR.services_by_name["AssessmentService"].full_name


def build(settings: Settings) -> tuple[ServiceHost, GrpcParts]:
    """Wire assessment: KPI projections fed by every service's events, scored over gRPC."""
    host = ServiceHost(settings)
    # One consumer route per mapped event type (handlers/mappers.py), plus the registry.
    calendar = AssessmentCalendar()
    forms = load_four_forms()
    register_handlers(host.consumer, calendar, projections(), forms=forms)
    servicer = AssessmentServicer(host.database, Scoring(load_rules(), forms), calendar)

    def register(server: grpc.aio.Server) -> None:
        assessment_pb2_grpc.add_AssessmentServiceServicer_to_server(servicer, server)

    return host, GrpcParts(service_names=[SERVICE_NAME], register=register)


def build_rebuild(
    settings: Settings, batch_records: int
) -> tuple[ProjectionRebuild, KafkaEventProducer, Database]:
    """The service's consumer and handlers, applied by a ProjectionRebuild (service stopped).

    The producer (for dead letters) must be started and stopped, and the database disposed,
    by the caller.
    """
    platform = settings.platform
    database = Database(settings.database_url, audit_key=settings.audit_key())
    producer = KafkaEventProducer(
        platform.kafka_bootstrap,
        client_id=f"xiezuo-{settings.service}-rebuild",
        security=settings.kafka_security,
    )
    consumer = EventConsumer(
        service=settings.service,
        database=database,
        dead_letter_producer=producer,
        max_attempts=platform.consumer_max_attempts,
        group_prefix=platform.kafka_group_prefix,
        counties=frozenset(platform.counties),
    )
    subscriptions = Subscriptions(consumer)
    register_handlers(subscriptions, AssessmentCalendar(), projections(), forms=load_four_forms())
    rebuild = ProjectionRebuild(
        subscriptions,
        platform.kafka_bootstrap,
        batch_records=batch_records,
        kafka_options=client_kwargs(platform.kafka_security()),
    )
    return rebuild, producer, database


async def run(settings: Settings, stop: asyncio.Event) -> None:
    """Run assessment until `stop` is set."""
    host, grpc_parts = build(settings)
    await host.run(grpc_parts, stop)
