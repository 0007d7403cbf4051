"""Runs one service process: database, outbox relay, consumers, gRPC and /metrics."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import ssl
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import grpc
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    AuthenticationFailedError,
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    KafkaError,
    SaslAuthenticationFailed,
    TopicAlreadyExistsError,
    TopicAuthorizationFailedError,
)
from faststream.kafka import KafkaBroker
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.trace import TracerProvider

from services.contracts.audit import CHECKPOINTS_TOPIC, TOPIC_CONFIGS
from services.contracts.registry import EVENT_TYPES
from services.runtime.audit import audit_key_of, unsealed_heads
from services.runtime.audit_checkpoints import CheckpointKeeper
from services.runtime.bus import (
    bind_consumer,
    broker_not_expected_yet,
    build_broker,
    quiet_transient_kafka_errors,
)
from services.runtime.db import Database
from services.runtime.grpc.metrics import CallMetricsInterceptor
from services.runtime.grpc.server import GrpcEndpoint
from services.runtime.inbox import DEAD_LETTER_REASONS, EventConsumer
from services.runtime.kafka_security import KafkaSecurity, client_kwargs, connection_refusal
from services.runtime.lag import ConsumerLag
from services.runtime.migrate import upgrade_async
from services.runtime.outbox import KafkaEventProducer, OutboxRelay, oldest_unpublished_age
from services.runtime.probes import Probes
from services.runtime.settings import Settings
from services.runtime.telemetry import (
    ServiceMetrics,
    configure_logging,
    configure_tracing,
    kafka_middlewares,
    shutdown_tracing,
    start_metrics_server,
)
from services.runtime.tokens import TokenVerifier, ensure_dev_keypair
from services.runtime.wal import WalCheckpointer

log = logging.getLogger(__name__)
# Waiting for Kafka at start: 0.5 s, doubling, at most 15 s between attempts.
CONNECT_BACKOFF_SECONDS = 0.5
CONNECT_BACKOFF_MAX = 15.0
# How often /metrics' gauges are read again: the outbox's age (one indexed row) and the
# consumer group's lag (three requests to the cluster).
OUTBOX_AGE_PROBE_SECONDS = 5.0
CONSUMER_LAG_PROBE_SECONDS = 10.0
# The newest entry of each county's audit chain against its seal (one look per county).
AUDIT_HEADS_PROBE_SECONDS = 60.0


@dataclass(frozen=True)
class GrpcParts:
    """What a service adds to its gRPC server."""

    service_names: Sequence[str]
    register: Callable[[grpc.aio.Server], None]


class ServiceHost:
    """Owns a service's infrastructure; the service's app.py supplies the domain parts."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        platform = settings.platform
        # SQLite's log is checkpointed beside the writers (runtime/wal.py), when configured.
        checkpoints_wal = platform.sqlite_wal_checkpoint_seconds > 0
        self.database = Database(
            settings.database_url,
            audit_key=settings.audit_key(),
            wal_autocheckpoint_pages=(
                platform.sqlite_wal_autocheckpoint_pages if checkpoints_wal else None
            ),
        )
        self.metrics = ServiceMetrics(settings.service)
        self.wal = (
            WalCheckpointer(
                self.database.sqlite_path,
                interval=platform.sqlite_wal_checkpoint_seconds,
                on_checkpoint=self.metrics.wal_checkpointed,
            )
            if checkpoints_wal and self.database.sqlite_path is not None
            else None
        )
        if self.wal is not None:
            self.metrics.start_wal_series()
        self.producer = KafkaEventProducer(
            platform.kafka_bootstrap,
            client_id=f"xiezuo-{settings.service}-relay",
            security=settings.kafka_security,
        )
        self.consumer = EventConsumer(
            service=settings.service,
            database=self.database,
            dead_letter_producer=self.producer,
            max_attempts=platform.consumer_max_attempts,
            metrics=self.metrics,
            batch_size=max(1, platform.consumer_batch_size),
            fetch_min_bytes=platform.consumer_fetch_min_bytes,
            fetch_wait_ms=platform.consumer_fetch_wait_ms,
            group_prefix=platform.kafka_group_prefix,
            counties=frozenset(platform.counties),
        )
        self.relay = OutboxRelay(
            self.database,
            self.producer,
            batch_size=platform.outbox_batch_size,
            idle_poll_seconds=platform.outbox_idle_poll_seconds,
            metrics=self.metrics,
            claim_timeout_seconds=platform.outbox_claim_timeout_seconds,
        )
        # The app adds its own probes (cases: deadlines per zone) before run().
        self.probes = Probes(on_failure=self.metrics.probe_failed)
        self.probes.add("outbox_age", self.refresh_outbox_age, interval=OUTBOX_AGE_PROBE_SECONDS)
        self.probes.add("audit_heads", self.refresh_audit_heads, interval=AUDIT_HEADS_PROBE_SECONDS)
        self.lag = ConsumerLag(
            platform.kafka_bootstrap,
            group=self.consumer.group_id,
            topics=(),
            client_id=f"xiezuo-{settings.service}-lag",
            client_options=settings.kafka_security.client_kwargs,
        )

    async def refresh_outbox_age(self) -> None:
        """Read the oldest unpublished outbox row's age into its gauge."""
        age = await oldest_unpublished_age(self.database, now=datetime.now(UTC))
        self.metrics.set_outbox_oldest_age(age)

    async def refresh_audit_heads(self) -> None:
        """Check every county chain's newest entry against its seal."""
        async with self.database.session() as session:
            count = await unsealed_heads(session, audit_key_of(session))
        self.metrics.set_audit_unsealed_heads(count)

    async def refresh_consumer_lag(self) -> None:
        """Read the consumer group's lag per topic and partition into its gauge."""
        await self.lag.refresh(self.metrics.set_consumer_lag)

    def token_verifier(self) -> TokenVerifier:
        """Verifier from the configured public keys, or the local dev key when none is set."""
        platform = self.settings.platform
        files = list(platform.token_public_key_files)
        if not files:
            _, public = ensure_dev_keypair(platform.state_dir / "keys")
            files = [public]
        return TokenVerifier(
            [path.read_bytes() for path in files],
            issuer=platform.token_issuer,
            audience=platform.token_audience,
        )

    def trace_statements(self, tracer_provider: TracerProvider) -> bool:
        """Give every SQL statement a span in the current trace, if the settings ask for it.

        The spans join the request's trace (gRPC → DB → Kafka → consumer → DB). Each costs
        the event loop its own span, attributes and an operation name taken from the SQL,
        whether sampled or not, so they are off unless `XIEZUO_SQL_SPANS` is set.
        """
        if not self.settings.platform.sql_spans:
            return False
        # skip_dep_check: the instrumentation's declared SQLAlchemy range predates 2.1.
        SQLAlchemyInstrumentor().instrument(
            engine=self.database.engine.sync_engine,
            tracer_provider=tracer_provider,
            skip_dep_check=True,
        )
        return True

    async def run(self, grpc_parts: GrpcParts, stop: asyncio.Event) -> None:
        """Start everything, announce the addresses, and shut down in order when `stop` is set."""
        service, platform = self.settings.service, self.settings.platform
        configure_logging(service, platform.log_level)
        quiet_transient_kafka_errors()
        tracer_provider = configure_tracing(service, platform.otlp_endpoint)
        self.trace_statements(tracer_provider)
        if platform.migrate_on_start:
            await upgrade_async(service, self.settings.database_url)
        metrics_server, metrics_port = start_metrics_server(
            self.metrics.registry, self.settings.metrics_host, self.settings.metrics_port
        )
        # The routes are known now (the app registered them): measure their topics' lag.
        self.lag.topics = self.consumer.topics()
        if self.lag.topics:
            self.probes.add(
                "consumer_lag", self.refresh_consumer_lag, interval=CONSUMER_LAG_PROBE_SECONDS
            )
        self.metrics.start_series(
            topics=self.lag.topics, reasons=DEAD_LETTER_REASONS, probes=self.probes.names
        )
        endpoint = GrpcEndpoint(
            address=self.settings.grpc_address,
            service_names=grpc_parts.service_names,
            register=grpc_parts.register,
            verifier=self.token_verifier(),
            interceptors=[CallMetricsInterceptor(self.metrics.grpc_request)],
        )
        # Listening but NOT_SERVING until Kafka is there: probes see the process alive and
        # not ready, instead of a crash loop while the broker starts.
        grpc_port = await endpoint.start(serving=False)
        host = self.settings.grpc_address.rsplit(":", 1)[0]
        addresses = {
            "service": service,
            "grpc": f"{host}:{grpc_port}",
            "metrics": f"http://{self.settings.metrics_host}:{metrics_port}/metrics",
        }
        print(json.dumps({"starting": addresses}), flush=True, file=sys.stdout)
        # Started before Kafka answers: an outbox that cannot drain is worth seeing then too.
        probes_stop = asyncio.Event()
        probing = asyncio.create_task(self.probes.run(probes_stop), name=f"{service}-probes")
        with broker_not_expected_yet():
            broker = await self._connect(tracer_provider, stop)
        if broker is None:
            # Stopped before Kafka was ever reachable: nothing was consumed or relayed.
            log.info("service stopping", extra={"service": service})
            await endpoint.stop(platform.grpc_drain_seconds)
            await self._stop_probes(probes_stop, probing)
            await self.database.dispose()
            metrics_server.stop()
            shutdown_tracing(tracer_provider)
            return
        wal_task = (
            asyncio.create_task(self.wal.run(), name=f"{service}-wal-checkpoints")
            if self.wal is not None
            else None
        )
        relay_task = asyncio.create_task(self.relay.run(), name=f"{service}-outbox-relay")
        keeper = CheckpointKeeper(
            self.database, service, interval=platform.audit_checkpoint_seconds
        )
        keeper_task = asyncio.create_task(keeper.run(), name=f"{service}-audit-checkpoints")
        await endpoint.set_serving(True)
        # One machine-readable line on stdout: `xiezuo up` and the tests read the real ports.
        print(json.dumps({"ready": addresses}), flush=True, file=sys.stdout)
        log.info("service ready", extra=addresses)
        # Everything built to start (modules, models, compiled statements) lives as long as the
        # process: out of the collector's sight, the collections that a consumer's allocations
        # trigger scan only what came after (≈ 15 % of a cases event's CPU, bench/README.md).
        # Collected first, so startup's own garbage is freed rather than kept forever.
        gc.collect()
        gc.freeze()
        try:
            await stop.wait()
        finally:
            log.info("service stopping", extra={"service": service})
            # Order: stop taking calls (drain in-flight ones), stop consuming, flush the outbox.
            await endpoint.stop(platform.grpc_drain_seconds)
            await broker.stop()
            # A last checkpoint of what this process wrote goes out with the final outbox flush.
            keeper.stop()
            await keeper_task
            await self.relay.stop()
            relay_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay_task
            await self.producer.stop()
            await self._stop_probes(probes_stop, probing)
            if self.wal is not None and wal_task is not None:
                self.wal.stop()
                await wal_task
            await self.database.dispose()
            metrics_server.stop()
            shutdown_tracing(tracer_provider)

    async def _stop_probes(self, stop: asyncio.Event, probing: asyncio.Task[None]) -> None:
        # Cancelled, not awaited: a round waiting on an absent broker must not hold the stop.
        stop.set()
        probing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await probing
        await self.lag.close()

    def topics_written(self) -> list[str]:
        """Topics this service publishes to: its Kafka user needs Write (and Describe) on them."""
        service = self.settings.service
        # Event types are named `xiezuo.<service>.<event>.vN` after the service publishing them.
        published = {
            event.topic
            for event in EVENT_TYPES.values()
            if event.event_type.startswith(f"xiezuo.{service}.")
        }
        return sorted(published | {self.consumer.dead_letter_topic, CHECKPOINTS_TOPIC})

    def topics_read(self) -> list[str]:
        """Topics this service consumes (group `group_id`): Read (and Describe) on them."""
        return self.consumer.topics()

    async def prepare_topics(self) -> None:
        """Create the topics (dev), or check the ones this service needs exist (production)."""
        platform = self.settings.platform
        security = self.settings.kafka_security
        if platform.kafka_create_topics:
            await ensure_topics(
                platform.kafka_bootstrap,
                self.consumer.dead_letter_topic,
                partitions=platform.kafka_topic_partitions,
                replication_factor=platform.kafka_topic_replication_factor,
                security=security,
            )
            return
        missing = await missing_topics(
            platform.kafka_bootstrap,
            sorted({*self.topics_written(), *self.topics_read()}),
            security=security,
        )
        if missing:
            raise TopicsMissing(missing)

    async def _connect(
        self, tracer_provider: TracerProvider, stop: asyncio.Event
    ) -> KafkaBroker | None:
        """Topics, producer and subscribers, retried with back-off until Kafka answers.

        Returns None if `stop` is set first. A refused topic (a configuration error, not a
        broker that is still starting) is raised.
        """
        service, platform = self.settings.service, self.settings.platform
        attempt = 0
        producer_started = False
        while not stop.is_set():
            attempt += 1
            broker: KafkaBroker | None = None
            try:
                await self.prepare_topics()
                if not producer_started:
                    # Started once and kept: a stopped aiokafka producer cannot start again.
                    await self.producer.start()
                    producer_started = True
                broker = build_broker(
                    platform.kafka_bootstrap,
                    client_id=f"xiezuo-{service}",
                    middlewares=kafka_middlewares(
                        self.metrics.registry, tracer_provider, service_name=service
                    ),
                    security=self.settings.kafka_security,
                )
                self.consumer.tracer_provider = tracer_provider
                bind_consumer(broker, self.consumer)
                await broker.start()
                return broker
            except TopicsRefused:
                raise
            except (KafkaError, OSError, TimeoutError) as exc:
                delay = min(CONNECT_BACKOFF_SECONDS * 2 ** (attempt - 1), CONNECT_BACKOFF_MAX)
                context = {
                    "bootstrap": platform.kafka_bootstrap,
                    "attempt": attempt,
                    "retry_in_seconds": delay,
                    "error_type": type(exc).__name__,
                }
                security = self.settings.kafka_security
                cause: BaseException = exc
                if isinstance(exc, KafkaConnectionError) and security.protocol != "PLAINTEXT":
                    cause = await connection_refusal(platform.kafka_bootstrap, security) or exc
                refusal = refusal_reason(cause, security)
                if refusal is None:
                    log.warning(
                        "Kafka not reachable yet; health stays NOT_SERVING, retrying",
                        extra=context,
                    )
                else:
                    # Something an operator must fix (credentials, ACLs, certificates, topics),
                    # not a broker still starting. Still retried: a KafkaUser or KafkaTopic may
                    # be reconciling, and a rotated secret is read again by the next attempt.
                    log.error(
                        "Kafka refused this service (%s); health stays NOT_SERVING, retrying",
                        refusal,
                        extra={**context, **security.describe()},
                    )
                if broker is not None:
                    with contextlib.suppress(Exception):
                        await broker.stop()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
        if producer_started:
            await self.producer.stop()
        return None


class TopicsRefused(KafkaError):
    """The broker refused to create a topic: a configuration error, not worth retrying."""


class TopicsMissing(KafkaError):
    """Topics this service needs are not there (or its Kafka user may not see them)."""

    def __init__(self, missing: Sequence[str]) -> None:
        super().__init__(
            "topics missing or not visible to this service's Kafka user: "
            + ", ".join(missing)
            + " (XIEZUO_KAFKA_CREATE_TOPICS=false: create them, e.g. the KafkaTopics, "
            "and grant the user Describe on them)"
        )
        self.missing = tuple(missing)


def refusal_reason(exc: BaseException, security: KafkaSecurity) -> str | None:
    """Why Kafka refused us, when it is a setting to fix rather than a broker still starting."""
    if isinstance(exc, TopicsMissing):
        return str(exc)
    if isinstance(exc, SaslAuthenticationFailed | AuthenticationFailedError):
        return (
            f"authentication failed for user {security.sasl_username!r} "
            f"({security.mechanism}): check XIEZUO_KAFKA_SASL_USERNAME and the password in "
            f"XIEZUO_KAFKA_SASL_PASSWORD_FILE"
        )
    if isinstance(
        exc,
        TopicAuthorizationFailedError
        | GroupAuthorizationFailedError
        | ClusterAuthorizationFailedError,
    ):
        return f"not authorised ({type(exc).__name__}: {exc}): check the user's ACLs"
    if isinstance(exc, ssl.SSLError):
        return (
            f"TLS handshake failed ({exc}): check XIEZUO_KAFKA_CA_FILE and, for mutual TLS, "
            "XIEZUO_KAFKA_CERT_FILE / XIEZUO_KAFKA_KEY_FILE"
        )
    return None


async def missing_topics(
    bootstrap: str, names: Sequence[str], *, security: KafkaSecurity | None = None
) -> list[str]:
    """Those of `names` the cluster does not show this client (it creates nothing)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **client_kwargs(security))
    await admin.start()
    try:
        # Only topics the user may Describe are listed: a missing ACL looks like a missing topic.
        existing = set(await admin.list_topics())
    finally:
        await admin.close()
    return sorted(set(names) - existing)


async def ensure_topics(
    bootstrap: str,
    *extra: str,
    partitions: int,
    replication_factor: int,
    security: KafkaSecurity | None = None,
) -> None:
    """Create every contract topic (and `extra` ones) that does not exist yet."""
    names = sorted({event.topic for event in EVENT_TYPES.values()} | set(extra))
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **client_kwargs(security))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in names if name not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                reply = await admin.create_topics(
                    [
                        NewTopic(
                            name,
                            num_partitions=partitions,
                            replication_factor=replication_factor,
                            topic_configs=TOPIC_CONFIGS.get(name),
                        )
                        for name in missing
                    ]
                )
                # The broker answers per topic instead of raising: a topic it refused (e.g. a
                # replication factor the cluster cannot meet) must stop the start-up.
                refused: list[str] = []
                for topic, code, *message in reply.topic_errors:
                    if code not in (0, TopicAlreadyExistsError.errno):
                        refused.append(f"{topic}: {message[0] if message else code}")
                if refused:
                    raise TopicsRefused("topics not created: " + "; ".join(refused))
    finally:
        await admin.close()
