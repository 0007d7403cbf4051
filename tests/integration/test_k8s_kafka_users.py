"""The generated KafkaUsers on a real secured broker: exactly their ACLs, and enough.

Every user and topic of deploy/k8s (components/kafka-topics and components/keda) is created on
the local KRaft broker with SASL_SSL and the StandardAuthorizer, each user granted exactly its
generated ACLs. Then the users that no service test exercises do their jobs: KEDA's lag reader
measures a group's lag with Describe alone, the operator lists and replays a dead letter, and
the web console's reader takes its notices without a group — and each is refused what it was
not granted. (The services' own users are exercised by
tests/integration/test_kafka_security.py, with ACLs of the same shape.)
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import ClusterAuthorizationFailedError, TopicAuthorizationFailedError

from services.console.live import LiveFeed
from services.contracts.assessment import SCORECARDS_TOPIC
from services.contracts.cases import DEADLINES_TOPIC, DeadlineBreached
from services.contracts.intake import CLUES_TOPIC
from services.runtime.deadletters import dead_letter_topic, read_dead_letters, replay
from services.runtime.envelope import Envelope
from services.runtime.kafka_security import KafkaSecurity
from services.runtime.lag import ConsumerLag
from services.runtime.localstack.kafka import BrokerSecurity, KafkaNode
from tests.integration.test_kafka_security import (
    BROKER_SUBJECT,
    DESCRIBE,
    GROUP,
    READ,
    TOPIC,
    WRITE,
    Pki,
    grant,
    make_pki,
)

pytestmark = pytest.mark.kafka

COMPONENTS = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "components"
GENERATED = (
    COMPONENTS / "kafka-topics" / "topics.yaml",
    COMPONENTS / "kafka-topics" / "users.yaml",
    COMPONENTS / "keda" / "scaling.yaml",
)
OPERATIONS = {"Read": READ, "Write": WRITE, "Describe": DESCRIBE}
RESOURCES = {"topic": TOPIC, "group": GROUP}
Manifest = dict[str, Any]


def generated(kind: str) -> list[Manifest]:
    """The generated manifests of `kind`."""
    return [
        doc
        for path in GENERATED
        for doc in yaml.safe_load_all(path.read_text())
        if doc and doc["kind"] == kind
    ]


@dataclass
class Cluster:
    """The broker, its CA and each generated user's password file."""

    node: KafkaNode
    pki: Pki
    password_files: dict[str, Path]

    @property
    def bootstrap(self) -> str:
        return self.node.bootstrap_servers

    def as_user(self, user: str) -> KafkaSecurity:
        """SASL_SSL (SCRAM-SHA-512) as a generated KafkaUser."""
        return KafkaSecurity(
            protocol="SASL_SSL",
            sasl_username=user,
            sasl_password_file=self.password_files[user],
            ca_file=self.pki.ca,
        )


@pytest.fixture(scope="module")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    """A secured broker with every generated topic, user and ACL."""
    secrets = tmp_path_factory.mktemp("kafka-users")
    pki = make_pki(secrets)
    users = {user["metadata"]["name"]: user for user in generated("KafkaUser")}
    password_files = {}
    passwords = {}
    for name in users:
        passwords[name] = uuid.uuid4().hex
        password_files[name] = secrets / f"{name}.password"
        password_files[name].write_text(passwords[name])
    node = KafkaNode(
        security=BrokerSecurity(
            ca_file=pki.ca,
            keystore_file=pki.broker_keystore,
            broker_subject=BROKER_SUBJECT,
            admin_user="admin",
            admin_password=uuid.uuid4().hex,
            users=passwords,
        )
    )
    await node.astart()
    try:
        admin_security = node.admin_security()
        assert admin_security is not None
        admin = AIOKafkaAdminClient(
            bootstrap_servers=node.bootstrap_servers, **admin_security.client_kwargs()
        )
        await admin.start()
        try:
            # One broker: replication 1, and min.insync.replicas must not exceed it.
            await admin.create_topics(
                [
                    NewTopic(
                        topic["spec"]["topicName"],
                        num_partitions=topic["spec"]["partitions"],
                        replication_factor=1,
                        topic_configs={
                            key: value
                            for key, value in topic["spec"]["config"].items()
                            if key != "min.insync.replicas"
                        },
                    )
                    for topic in generated("KafkaTopic")
                ]
            )
            for name, user in users.items():
                await grant(
                    admin,
                    f"User:{name}",
                    [
                        (
                            RESOURCES[acl["resource"]["type"]],
                            acl["resource"]["name"],
                            OPERATIONS[op],
                        )
                        for acl in user["spec"]["authorization"]["acls"]
                        for op in acl["operations"]
                    ],
                )
        finally:
            await admin.close()
        yield Cluster(node, pki, password_files)
    finally:
        await node.astop()


async def produce(
    cluster: Cluster,
    user: str,
    topic: str,
    values: list[bytes],
    headers: list[tuple[str, bytes]] | None = None,
) -> None:
    """Send `values` (one key, so one partition) as `user`."""
    producer = AIOKafkaProducer(
        bootstrap_servers=cluster.bootstrap,
        enable_idempotence=True,
        acks="all",
        **cluster.as_user(user).client_kwargs(),
    )
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=b"c-1:z-1", headers=headers or [])
    finally:
        await producer.stop()


async def test_the_lag_reader_measures_a_group_it_may_only_describe(cluster: Cluster) -> None:
    # intake publishes five clues; cases' group takes them and commits two.
    await produce(cluster, "xiezuo-intake", CLUES_TOPIC, [b"%d" % n for n in range(5)])
    consumer = AIOKafkaConsumer(
        CLUES_TOPIC,
        bootstrap_servers=cluster.bootstrap,
        group_id="xiezuo-cases",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **cluster.as_user("xiezuo-cases").client_kwargs(),
    )
    await consumer.start()
    try:
        records: list[Any] = []
        async with asyncio.timeout(60):
            while len(records) < 5:
                batch = await consumer.getmany(timeout_ms=500)
                records += [record for part in batch.values() for record in part]
        (partition,) = {record.partition for record in records}
        second = sorted(records, key=lambda record: record.offset)[1]
        await consumer.commit({TopicPartition(CLUES_TOPIC, partition): second.offset + 1})
    finally:
        await consumer.stop()

    reader = cluster.as_user("xiezuo-lag-reader")
    lag = ConsumerLag(
        cluster.bootstrap,
        group="xiezuo-cases",
        topics=[CLUES_TOPIC],
        client_id="keda-like",
        client_options=reader.client_kwargs,
    )
    try:
        measured = await lag.measure()
    finally:
        await lag.close()
    assert measured[(CLUES_TOPIC, partition)] == 3
    assert sum(measured.values()) == 3

    # Describe is all it has: reading the records themselves is refused.
    peek = AIOKafkaConsumer(
        bootstrap_servers=cluster.bootstrap, group_id=None, **reader.client_kwargs()
    )
    await peek.start()
    try:
        peek.assign([TopicPartition(CLUES_TOPIC, partition)])
        peek.seek(TopicPartition(CLUES_TOPIC, partition), 0)
        with pytest.raises(TopicAuthorizationFailedError):
            async with asyncio.timeout(30):
                while True:
                    await peek.getmany(timeout_ms=500)
    finally:
        await peek.stop()


async def test_the_operator_lists_and_replays_a_dead_letter_and_writes_nothing_else(
    cluster: Cluster,
) -> None:
    # cases parks a record that came from intake's clues (its own dead-letter topic).
    event_id = uuid.uuid4().hex
    await produce(
        cluster,
        "xiezuo-cases",
        dead_letter_topic("cases"),
        [b'{"parked": true}'],
        headers=[
            ("ce_id", event_id.encode()),
            ("x-dead-letter-reason", b"handler_failed"),
            ("x-original-topic", CLUES_TOPIC.encode()),
        ],
    )
    operator = cluster.as_user("xiezuo-operator")
    letters = await read_dead_letters(cluster.bootstrap, "cases", security=operator)
    (letter,) = [letter for letter in letters if letter.event_id == event_id]
    assert letter.original_topic == CLUES_TOPIC
    assert await replay(cluster.bootstrap, [letter], security=operator) == 1

    # The replayed record is on clues, where cases' group reads it.
    consumer = AIOKafkaConsumer(
        CLUES_TOPIC,
        bootstrap_servers=cluster.bootstrap,
        group_id="xiezuo-cases",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **cluster.as_user("xiezuo-cases").client_kwargs(),
    )
    await consumer.start()
    try:
        seen: set[str] = set()
        async with asyncio.timeout(60):
            while event_id not in seen:
                batch = await consumer.getmany(timeout_ms=500)
                seen |= {
                    value.decode()
                    for part in batch.values()
                    for record in part
                    for name, value in record.headers
                    if name == "ce_id"
                }
    finally:
        await consumer.stop()

    # No topic that no service consumes: the operator cannot publish a scorecard.
    with pytest.raises(TopicAuthorizationFailedError):
        await produce(cluster, "xiezuo-operator", SCORECARDS_TOPIC, [b"forged"])


async def test_the_console_reads_its_notices_without_a_group_and_writes_nothing(
    cluster: Cluster,
) -> None:
    # The console's own reader (services/console/live.py) as its generated user: it is
    # granted the four notice topics and no group, and that is enough.
    feed = LiveFeed(
        cluster.bootstrap,
        client_id="console-like",
        security=cluster.as_user("xiezuo-console"),
    )
    await feed.start()
    try:
        with feed.subscription() as notices:
            async with asyncio.timeout(60):
                await feed.ready.wait()
            event = DeadlineBreached(
                county_id="c-1",
                zone_id="z-1",
                deadline_id="d-1",
                case_id="case-1",
                kind="disposal",
                due_at=datetime(2026, 4, 2, tzinfo=UTC),
                rule_version="test",
            )
            envelope = Envelope(
                id=uuid.uuid4().hex,
                type=event.event_type,
                source="xiezuo/cases",
                time=datetime.now(UTC),
                county_id="c-1",
                zone_id="z-1",
                data=event.model_dump_json().encode(),
            )
            await produce(
                cluster, "xiezuo-cases", DEADLINES_TOPIC, [envelope.data], envelope.headers()
            )
            async with asyncio.timeout(60):
                notice = await notices.get()
    finally:
        await feed.stop()
    assert (notice.event_id, notice.subject_id) == (envelope.id, "case-1")
    # Not even a producer id: Write on no topic means no idempotent writes at all.
    with pytest.raises((TopicAuthorizationFailedError, ClusterAuthorizationFailedError)):
        await produce(cluster, "xiezuo-console", DEADLINES_TOPIC, [b"forged"])
