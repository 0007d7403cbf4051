"""No-Docker local stack: a KRaft Kafka node and a private PostgreSQL cluster."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from services.runtime.localstack.kafka import KafkaError, KafkaNode, resolve_jars
    from services.runtime.localstack.ports import free_port, free_ports, is_port_free
    from services.runtime.localstack.postgres import PostgresCluster, PostgresError, find_pg_bindir

# Imported lazily so `python -m services.runtime.localstack.kafka` does not import the module
# twice (runpy warns when the package already imported it).
_EXPORTS = {
    "KafkaError": "kafka",
    "KafkaNode": "kafka",
    "resolve_jars": "kafka",
    "free_port": "ports",
    "free_ports": "ports",
    "is_port_free": "ports",
    "PostgresCluster": "postgres",
    "PostgresError": "postgres",
    "find_pg_bindir": "postgres",
}

__all__ = [
    "KafkaError",
    "KafkaNode",
    "PostgresCluster",
    "PostgresError",
    "find_pg_bindir",
    "free_port",
    "free_ports",
    "is_port_free",
    "resolve_jars",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
