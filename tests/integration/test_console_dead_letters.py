"""The operators' dead-letter pages on the real broker: a parked record is listed and shown
(its error, origin and CloudEvents headers, never its payload); a non-operator is refused.

The console runs in-process (Starlette's test client) and signs people in through a local
OpenID Connect provider (tests/console_idp.py), the only way to carry the `operator` role.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from starlette.testclient import TestClient

from services.console.app import build_app
from services.console.settings import ConsoleSettings
from services.runtime.deadletters import dead_letter_topic
from services.runtime.localstack.kafka import KafkaNode
from services.runtime.settings import PlatformSettings
from tests.console_idp import CLIENT_ID, CLIENT_SECRET, running_idp

pytestmark = pytest.mark.kafka
SERVICE = "collaboration"
SECRET_FACT = "周某-secret-fact"


def _park(bootstrap: str, event_id: str) -> None:
    """Park one record on the service's dead-letter topic, as a consumer's inbox does."""

    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(
                dead_letter_topic(SERVICE),
                key=b"c-demo",
                value=f'{{"letter_id": "L-1", "note": "{SECRET_FACT}"}}'.encode(),
                headers=[
                    ("ce_id", event_id.encode()),
                    ("ce_type", b"xiezuo.collaboration.letter_sent.v1"),
                    ("x-dead-letter-reason", b"handler_failed"),
                    ("x-dead-letter-error", b"ValueError: no such agreement"),
                    ("x-dead-letter-attempts", b"3"),
                    ("x-original-topic", b"xiezuo.collaboration.letters"),
                    ("x-original-partition", b"1"),
                    ("x-original-offset", b"17"),
                    ("x-dead-letter-at", b"2026-12-04T10:00:00+00:00"),
                ],
            )
        finally:
            await producer.stop()

    asyncio.run(send())


@contextlib.contextmanager
def _signed_in(tmp_path: Path, bootstrap: str, roles: list[str]) -> Iterator[TestClient]:
    """A running console whose client is signed in (through the provider) with these roles."""
    claims = {"sub": "ops-1", "name": "值班运维", "roles": roles, "county_id": "c-demo"}
    secret = tmp_path / "oidc-client-secret"
    secret.write_text(CLIENT_SECRET + "\n")
    with running_idp({**claims, "zone_ids": "*"}) as idp:
        settings = ConsoleSettings(
            dev_sign_in=False,
            oidc_issuer=idp.issuer,
            oidc_client_id=CLIENT_ID,
            oidc_client_secret_file=secret,
        )
        platform = PlatformSettings(state_dir=tmp_path, kafka_bootstrap=bootstrap)
        with TestClient(build_app(settings, platform)) as client:
            started = client.get("/sign-in/oidc?next=/", follow_redirects=False)
            approved = httpx.get(started.headers["location"], follow_redirects=False)
            back = urlsplit(approved.headers["location"])
            done = client.get(f"{back.path}?{back.query}", follow_redirects=False)
            assert done.status_code == 303, done.text
            yield client


def test_an_operator_lists_and_opens_a_parked_record(tmp_path: Path, kafka: KafkaNode) -> None:
    event_id = f"ev-{uuid.uuid4().hex}"
    _park(kafka.bootstrap_servers, event_id)
    with _signed_in(tmp_path, kafka.bootstrap_servers, ["operator"]) as client:
        listed = client.get(f"/dead-letters?service={SERVICE}")
        assert listed.status_code == 200, listed.text
        assert event_id in listed.text and "handler_failed" in listed.text
        assert "xiezuo.collaboration.letters[1]@17" in listed.text
        shown = client.get(f"/dead-letters/{SERVICE}/{event_id}")
        assert shown.status_code == 200, shown.text
        assert "ValueError: no such agreement" in shown.text
        assert "xiezuo.collaboration.letter_sent.v1" in shown.text
        # The record's content stays with the service that owns it.
        assert SECRET_FACT not in shown.text and SECRET_FACT not in listed.text
        assert client.get(f"/dead-letters/{SERVICE}/ev-not-parked").status_code == 404
        assert client.get("/dead-letters?service=nowhere").status_code == 404


def test_dead_letters_are_refused_to_anyone_but_an_operator(
    tmp_path: Path, kafka: KafkaNode
) -> None:
    with _signed_in(tmp_path, kafka.bootstrap_servers, ["county_leadership"]) as client:
        assert client.get(f"/dead-letters?service={SERVICE}").status_code == 403
        assert client.get(f"/dead-letters/{SERVICE}/ev-1").status_code == 403
        assert "/dead-letters" not in client.get("/").text
