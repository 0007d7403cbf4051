"""Unit tests of the local stack helpers; nothing here starts Kafka or PostgreSQL."""

from __future__ import annotations

import base64
import socket
from pathlib import Path

import pytest

from services.runtime.localstack import kafka, postgres
from services.runtime.localstack.kafka import KafkaError, KafkaNode
from services.runtime.localstack.ports import free_port, free_ports, is_port_free
from services.runtime.localstack.postgres import PostgresCluster, PostgresError

# -- ports -----------------------------------------------------------------------------------


def test_free_port_can_be_bound() -> None:
    port = free_port()
    assert 1024 <= port <= 65535
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_free_ports_are_distinct() -> None:
    ports = free_ports(5)
    assert len(set(ports)) == 5


def test_free_ports_rejects_zero() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        free_ports(0)


def test_is_port_free_sees_a_bound_port() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert not is_port_free(port)


# -- server.properties -----------------------------------------------------------------------


def _parse(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line and line[0] != "#")
    return {key: value for key, value in pairs}


def test_server_properties_describe_one_kraft_node(tmp_path: Path) -> None:
    props = _parse(
        kafka.render_server_properties(
            port=19092, controller_port=19093, log_dir=tmp_path / "data", partitions=6
        )
    )
    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == "1"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert props["controller.listener.names"] == "CONTROLLER"
    assert props["log.dirs"] == str(tmp_path / "data")
    assert props["num.partitions"] == "6"
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["transaction.state.log.replication.factor"] == "1"
    assert props["transaction.state.log.min.isr"] == "1"
    assert props["auto.create.topics.enable"] == "true"
    assert props["group.initial.rebalance.delay.ms"] == "0"


def test_server_properties_overrides_win(tmp_path: Path) -> None:
    props = _parse(
        kafka.render_server_properties(
            port=1, controller_port=2, log_dir=tmp_path, overrides={"num.partitions": "12"}
        )
    )
    assert props["num.partitions"] == "12"


def test_cluster_id_is_a_kafka_uuid() -> None:
    cluster_id = kafka.new_cluster_id()
    assert len(cluster_id) == 22
    assert not cluster_id.startswith("-")
    assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


# -- classpath resolution --------------------------------------------------------------------


def _fake_mvn(tmp_path: Path, body: str) -> str:
    script = tmp_path / "mvn"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)
    return str(script)


def test_resolve_jars_without_pom_is_clear(tmp_path: Path) -> None:
    with pytest.raises(KafkaError, match="pom not found"):
        kafka.resolve_jars(tmp_path / "cache", pom=tmp_path / "missing.xml")


def test_resolve_jars_without_maven_is_clear(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(KafkaError, match=r"Maven \(mvn\) is not on PATH"):
        kafka.resolve_jars(tmp_path / "cache")


def test_resolve_jars_reports_maven_output(tmp_path: Path) -> None:
    mvn = _fake_mvn(tmp_path, "echo 'Could not resolve org.apache.kafka:kafka_2.13'\nexit 1\n")
    with pytest.raises(KafkaError, match=r"Could not resolve org\.apache\.kafka") as failure:
        kafka.resolve_jars(tmp_path / "cache", mvn=mvn)
    assert "Maven failed (1)" in str(failure.value)
    assert not (tmp_path / "cache").exists()


def test_resolve_jars_copies_then_reuses_the_cache(tmp_path: Path) -> None:
    # The fake writes the jars into -DoutputDirectory=..., the last argument, as Maven would.
    body = 'for arg; do out="${arg#-DoutputDirectory=}"; done\n'
    body += 'mkdir -p "$out" && touch "$out/kafka_2.13-9.9.9.jar" "$out/kafka-clients-9.9.9.jar"\n'
    mvn = _fake_mvn(tmp_path, body)
    cache = tmp_path / "cache"
    jars = kafka.resolve_jars(cache, mvn=mvn)
    assert [jar.name for jar in jars] == ["kafka-clients-9.9.9.jar", "kafka_2.13-9.9.9.jar"]
    assert (cache / kafka.COMPLETE_MARKER).read_text().strip() == kafka.pom_digest()
    # Complete for this pom: a second call must not run Maven at all.
    assert kafka.resolve_jars(cache, mvn=str(tmp_path / "no-such-mvn")) == jars


def test_stale_marker_triggers_a_new_resolution(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "kafka_2.13-1.0.0.jar").touch()
    (cache / kafka.COMPLETE_MARKER).write_text("digest-of-an-older-pom\n")
    assert kafka.cached_jars(cache) is None
    mvn = _fake_mvn(tmp_path, "exit 3\n")
    with pytest.raises(KafkaError, match=r"Maven failed \(3\)"):
        kafka.resolve_jars(cache, mvn=mvn)


def test_default_cache_dir_follows_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XIEZUO_CACHE_DIR", str(tmp_path))
    assert kafka.default_cache_dir() == tmp_path / "kafka-libs"
    monkeypatch.delenv("XIEZUO_CACHE_DIR")
    assert kafka.default_cache_dir() == kafka.REPO_ROOT / ".cache" / "kafka-libs"


def test_find_java_without_java_is_clear(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-jdk"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(KafkaError, match="JAVA_HOME"):
        kafka.find_java()


def test_kafka_node_has_no_bootstrap_before_start() -> None:
    with pytest.raises(KafkaError, match="until it is started"):
        _ = KafkaNode().bootstrap_servers


async def test_sync_start_inside_event_loop_is_refused() -> None:
    with pytest.raises(KafkaError, match="astart"):
        KafkaNode().start()


# -- postgres --------------------------------------------------------------------------------


def test_postgresql_conf_is_private_and_fast() -> None:
    conf = postgres.render_postgresql_conf(port=15432, socket_dir="/tmp/x")
    assert "listen_addresses = '127.0.0.1'" in conf
    assert "port = 15432" in conf
    assert "unix_socket_directories = '/tmp/x'" in conf
    for setting in ("fsync = off", "full_page_writes = off", "synchronous_commit = off"):
        assert setting in conf


def test_postgres_urls() -> None:
    cluster = PostgresCluster(port=15432)
    assert cluster.url("cases") == "postgresql+asyncpg://postgres@127.0.0.1:15432/cases"
    assert cluster.dsn("cases") == "postgresql://postgres@127.0.0.1:15432/cases"


def test_bad_pg_bindir_override_is_clear(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XIEZUO_PG_BINDIR", str(tmp_path))
    with pytest.raises(PostgresError, match="has no initdb"):
        postgres.find_pg_bindir()


def test_database_names_are_checked() -> None:
    with pytest.raises(PostgresError, match="invalid database name"):
        PostgresCluster(port=15432).create_database("x; drop database postgres")
