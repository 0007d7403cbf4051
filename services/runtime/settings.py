"""Settings shared by every service, read from `XIEZUO_*` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.runtime.audit_key import AuditKey, load_audit_key
from services.runtime.kafka_security import KafkaSecurity

SERVICES = ("intake", "cases", "staffing", "assessment", "collaboration")
# Runnable (`xiezuo serve`) and deployed by deploy/k8s but not started by `xiezuo up`: none now
# (collaboration joined SERVICES with the two-county demo, issue 11).
STANDALONE_SERVICES: tuple[str, ...] = ()

# Fixed defaults keep `xiezuo up` predictable: operators learn one port per service.
DEFAULT_GRPC_PORTS = {
    "intake": 50051,
    "cases": 50052,
    "staffing": 50053,
    "assessment": 50054,
    "collaboration": 50055,
}
DEFAULT_METRICS_PORTS = {
    "intake": 9101,
    "cases": 9102,
    "staffing": 9103,
    "assessment": 9104,
    "collaboration": 9105,
}


class PlatformSettings(BaseSettings):
    """Settings common to all services (`XIEZUO_<NAME>`)."""

    model_config = SettingsConfigDict(env_prefix="XIEZUO_", extra="ignore")

    state_dir: Path = Path(".state")
    kafka_bootstrap: str = "127.0.0.1:9092"
    # For topics the services create when missing (a single dev broker needs 1; a production
    # cluster 3, or create the topics beforehand).
    kafka_topic_partitions: int = 6
    kafka_topic_replication_factor: int = 1
    # False in production: topics are declared by the operator (Strimzi KafkaTopic), and a
    # service only checks that the ones it needs exist (readiness fails while one is missing).
    kafka_create_topics: bool = True
    # Consumer groups are `<prefix>-<service>`. Two deployments on one broker (two counties
    # sharing a dev broker) each need their own, e.g. `xiezuo-c-qingyu`; one per broker is fine.
    kafka_group_prefix: str = Field(default="xiezuo", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
    # The counties this deployment serves (JSON list, e.g. XIEZUO_COUNTIES='["c-qingyu"]');
    # empty: all. Consumers ignore other counties' events: a broker two deployments share
    # carries both counties' cases and staffing events on the same topics.
    counties: list[str] = Field(default_factory=list)
    # PLAINTEXT | SSL | SASL_PLAINTEXT | SASL_SSL; the rest is checked by kafka_security().
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    # The password only ever comes from a file (a mounted Secret), never from the environment.
    kafka_sasl_password_file: Path | None = None
    kafka_ca_file: Path | None = None
    kafka_cert_file: Path | None = None
    kafka_key_file: Path | None = None
    # PEM-encoded Ed25519 public keys, one file each, so keys can rotate without a release.
    token_public_key_files: list[Path] = Field(default_factory=list)
    token_issuer: str = "xiezuo-dev"
    token_audience: str = "xiezuo"
    otlp_endpoint: str | None = None
    # A span per SQL statement (and per connection checkout), inside the call's or event's
    # trace. Off by default: it took 6 % of intake's event loop under load (bench/README.md,
    # session 21); turn it on to see a slow call's statements. Spans follow the trace sampler.
    sql_spans: bool = False
    log_level: str = "INFO"
    migrate_on_start: bool = True
    outbox_batch_size: int = 500
    # The relay is woken by commits in its own process; this is only the safety net for
    # rows written by other processes (CLI imports, another replica).
    outbox_idle_poll_seconds: float = 2.0
    # PostgreSQL: how long a relay pass may hold its claimed outbox rows without a statement
    # before the server ends its session and another replica's relay takes over.
    outbox_claim_timeout_seconds: float = Field(default=120.0, gt=0)
    consumer_max_attempts: int = 3
    # Records a consumer applies in one transaction (and commits offsets for at once); 1 turns
    # batching off. Each batch pays a commit (an fsync), an offset commit and a few look-ups:
    # 100 → 500 took a consumer from ≈ 0.33 to ≈ 0.25 ms of CPU per clue (bench/README.md).
    # A batch holds SQLite's write lock while it runs (≈ 150 ms for 500 clues), so keep it
    # modest where the same process serves writes.
    consumer_batch_size: int = 500
    # A batched consumer's fetch is answered once this much is waiting or the wait is over:
    # at a few hundred events a second a batch then holds a tenth of a second of them instead
    # of the one or two that arrived since the last, and each batch's fixed cost (a commit,
    # an offset commit, the inbox look-up) is shared. The price is up to the wait in latency.
    consumer_fetch_min_bytes: int = Field(default=32_768, ge=1)
    consumer_fetch_wait_ms: int = Field(default=100, ge=0)
    grpc_drain_seconds: float = 10.0
    vault_key_file: Path | None = None
    # How far back a `back_entry` principal may date a step (补录 of a paper ledger).
    back_entry_days: int = 400
    # How often each service anchors its audit chain heads on Kafka (only heads that moved).
    audit_checkpoint_seconds: float = 300.0
    # SQLite: how often a service folds its write-ahead log back into the database file on a
    # thread of its own (services/runtime/wal.py), so no commit pays for the others' pages;
    # 0 leaves it to SQLite, inside whichever commit takes the log past 1,000 pages.
    sqlite_wal_checkpoint_seconds: float = Field(default=1.0, ge=0)
    # The log length (pages of 4 KiB) at which a commit still checkpoints itself while that
    # thread runs: the bound on the log if the checkpoints fall behind (a long read holds them).
    sqlite_wal_autocheckpoint_pages: int = Field(default=16_384, ge=1_000)

    def kafka_security(self) -> KafkaSecurity:
        """The Kafka client security these settings describe; KafkaSettingsError if unusable."""
        return KafkaSecurity(
            protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism,
            sasl_username=self.kafka_sasl_username,
            sasl_password_file=self.kafka_sasl_password_file,
            ca_file=self.kafka_ca_file,
            cert_file=self.kafka_cert_file,
            key_file=self.kafka_key_file,
        )


class ServiceSettings(BaseSettings):
    """Settings of one service (`XIEZUO_<SERVICE>_<NAME>`)."""

    model_config = SettingsConfigDict(extra="ignore")

    database_url: str | None = None
    grpc_host: str = "127.0.0.1"
    grpc_port: int | None = None
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None
    # The audit chain's HMAC key; default `<state_dir>/keys/audit-<service>.key` (created once).
    audit_key_file: Path | None = None


class Settings:
    """Everything one service process needs: platform-wide plus its own settings."""

    def __init__(self, service: str, platform: PlatformSettings | None = None) -> None:
        if service not in SERVICES + STANDALONE_SERVICES:
            known = SERVICES + STANDALONE_SERVICES
            raise ValueError(f"unknown service {service!r}; expected one of {known}")
        self.service = service
        self.platform = platform or PlatformSettings()
        # Checked here, at start-up, so a bad combination stops the process before it serves.
        self.kafka_security = self.platform.kafka_security()
        own = ServiceSettings(_env_prefix=f"XIEZUO_{service.upper()}_")
        self.database_url = own.database_url or self.default_database_url()
        self.grpc_address = f"{own.grpc_host}:{_port(own.grpc_port, DEFAULT_GRPC_PORTS[service])}"
        self.metrics_host = own.metrics_host
        self.metrics_port = _port(own.metrics_port, DEFAULT_METRICS_PORTS[service])
        self.audit_key_file = own.audit_key_file

    def audit_key(self, *, create: bool = True) -> AuditKey:
        """This service's audit key: the configured file, or the dev one under the state dir.

        Only the dev key is ever created, and only when `create` (a verifier never creates one:
        a fresh key would make every entry look forged).
        """
        if self.audit_key_file is not None:
            return load_audit_key(self.audit_key_file, create=False)
        path = self.platform.state_dir / "keys" / f"audit-{self.service}.key"
        return load_audit_key(path, create=create)

    def default_database_url(self) -> str:
        """SQLite file under the state directory: the zero-setup default for `xiezuo up`."""
        path = (self.platform.state_dir / "db" / f"{self.service}.sqlite3").resolve()
        return f"sqlite+aiosqlite:///{path}"


def _port(value: int | None, default: int) -> int:
    return default if value is None else value
