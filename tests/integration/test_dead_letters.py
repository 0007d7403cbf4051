"""Dead letters can be listed and replayed to their original topic, where consumers dedupe."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from services.cases.domain.rules import DEFAULT_RULES
from services.cases.handlers.clue_registered import ClueRegisteredHandler
from services.cases.store.tables import ClueRow
from services.runtime.deadletters import dead_letter_topic, read_dead_letters, replay
from services.runtime.inbox import EventConsumer, Outcome
from services.runtime.localstack import KafkaNode, free_port
from tests.conftest import MakeDatabase
from tests.integration.helpers import (
    clue_event_class,
    clue_registered,
    count_rows,
    create_topics,
    envelope_of_event,
    header_map,
    read_records,
    record_of,
    started_producer,
    unique,
)

pytestmark = pytest.mark.kafka
XIEZUO = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "xiezuo"


async def test_a_parked_event_is_listed_and_replays_into_one_effect(
    kafka: KafkaNode, make_database: MakeDatabase
) -> None:
    database = await make_database("cases")
    topic = unique("clues")
    service = unique("svc").replace("-", "")
    await create_topics(kafka.bootstrap_servers, topic, dead_letter_topic(service))
    event_class = clue_event_class(topic)
    event = clue_registered(event_class)
    envelope = envelope_of_event(event)
    failures: list[int] = []

    async def broken_then_fixed(session, event, envelope):  # type: ignore[no-untyped-def]
        if not failures:
            failures.append(1)
            raise RuntimeError("registry not loaded yet")
        await ClueRegisteredHandler([DEFAULT_RULES])(session, event, envelope)

    async with started_producer(kafka.bootstrap_servers) as producer:
        consumer = EventConsumer(
            service=service,
            database=database,
            dead_letter_producer=producer,
            max_attempts=1,
            retry_backoff_seconds=0.01,
        )
        consumer.on(event_class, broken_then_fixed)
        record = record_of(envelope, topic=topic, offset=7)
        assert await consumer.consume(record) is Outcome.DEAD_LETTERED

        letters = await read_dead_letters(kafka.bootstrap_servers, service)
        assert [(letter.event_id, letter.reason) for letter in letters] == [
            (envelope.id, "handler-failed")
        ]
        letter = letters[0]
        assert "registry not loaded yet" in letter.error
        assert (letter.original_topic, letter.original_offset) == (topic, "7")

        assert await replay(kafka.bootstrap_servers, letters) == 1
        replayed = (await read_records(kafka.bootstrap_servers, topic, 1))[0]
        headers = header_map(replayed)
        assert headers["ce_id"] == envelope.id.encode()
        assert not any(name.startswith("x-") for name in headers)
        assert replayed.value == envelope.data

        # The cause is fixed: the replayed record applies once; a second replay changes nothing.
        again = record_of(envelope, topic=topic, offset=replayed.offset)
        assert await consumer.consume(again) is Outcome.PROCESSED
        assert await consumer.consume(again) is Outcome.DUPLICATE
    assert await count_rows(database, ClueRow, ClueRow.clue_id == event.clue_id) == 1


async def test_an_empty_or_missing_dead_letter_topic_lists_nothing(kafka: KafkaNode) -> None:
    assert await read_dead_letters(kafka.bootstrap_servers, unique("nobody")) == []


def test_cli_reports_an_unreachable_broker_without_a_traceback(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XIEZUO_")}
    env["XIEZUO_KAFKA_BOOTSTRAP"] = f"127.0.0.1:{free_port()}"
    env["XIEZUO_STATE_DIR"] = str(tmp_path)
    result = subprocess.run(
        [str(XIEZUO), "dead-letter", "list", "cases"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # 3: Kafka not reachable (docs/operations.md), said in one line.
    assert result.returncode == 3
    assert "cannot read dead letters" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr

    wrong = subprocess.run(
        [str(XIEZUO), "dead-letter", "list", "payroll"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert wrong.returncode == 2 and "unknown service" in wrong.stderr
