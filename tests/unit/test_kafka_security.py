"""Kafka security settings: every combination that cannot work is refused at start-up, by name."""

from __future__ import annotations

import datetime as dt
import ssl
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from services.cli import main as cli
from services.runtime.kafka_security import KafkaSecurity, KafkaSettingsError
from services.runtime.localstack.kafka import BrokerSecurity
from services.runtime.localstack.kafka import KafkaError as LocalKafkaError
from services.runtime.settings import PlatformSettings, Settings

PASSWORD = "s3cret-Pa55word"


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "password"
    path.write_text(PASSWORD + "\n")
    return path


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A self-signed CA and a client certificate with its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "intake")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    ca, cert_file, key_file = tmp_path / "ca.pem", tmp_path / "tls.crt", tmp_path / "tls.key"
    ca.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca, cert_file, key_file


def test_the_default_is_plain_text_with_no_extra_client_arguments() -> None:
    security = PlatformSettings().kafka_security()
    assert security.protocol == "PLAINTEXT"
    assert security.client_kwargs() == {}
    assert security.broker_security() is None


def test_the_settings_come_from_the_documented_environment_variables(
    monkeypatch: pytest.MonkeyPatch, password_file: Path, tls_files: tuple[Path, Path, Path]
) -> None:
    ca, cert, key = tls_files
    for name, value in {
        "XIEZUO_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "XIEZUO_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
        "XIEZUO_KAFKA_SASL_USERNAME": "xiezuo-intake",
        "XIEZUO_KAFKA_SASL_PASSWORD_FILE": str(password_file),
        "XIEZUO_KAFKA_CA_FILE": str(ca),
        "XIEZUO_KAFKA_CERT_FILE": str(cert),
        "XIEZUO_KAFKA_KEY_FILE": str(key),
        "XIEZUO_KAFKA_CREATE_TOPICS": "false",
    }.items():
        monkeypatch.setenv(name, value)
    settings = Settings("intake")
    assert settings.platform.kafka_create_topics is False
    security = settings.kafka_security
    assert (security.protocol, security.mechanism, security.sasl_username) == (
        "SASL_SSL",
        "SCRAM-SHA-256",
        "xiezuo-intake",
    )
    assert (security.ca_file, security.cert_file, security.key_file) == (ca, cert, key)


def test_topics_are_created_unless_switched_off() -> None:
    assert PlatformSettings().kafka_create_topics is True


def test_an_unknown_protocol_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XIEZUO_KAFKA_SECURITY_PROTOCOL", "TLS")
    with pytest.raises(KafkaSettingsError, match=r"XIEZUO_KAFKA_SECURITY_PROTOCOL='TLS'.*SASL_SSL"):
        Settings("cases")


def test_an_unknown_mechanism_is_refused(password_file: Path) -> None:
    with pytest.raises(KafkaSettingsError, match="XIEZUO_KAFKA_SASL_MECHANISM='GSSAPI'"):
        KafkaSecurity(
            protocol="SASL_SSL",
            sasl_mechanism="GSSAPI",
            sasl_username="u",
            sasl_password_file=password_file,
        )


@pytest.mark.parametrize("protocol", ["SASL_SSL", "SASL_PLAINTEXT"])
def test_sasl_needs_a_username(protocol: str, password_file: Path) -> None:
    with pytest.raises(KafkaSettingsError, match=f"{protocol} needs XIEZUO_KAFKA_SASL_USERNAME"):
        KafkaSecurity(protocol=protocol, sasl_password_file=password_file)


def test_sasl_needs_a_password_file() -> None:
    with pytest.raises(KafkaSettingsError, match="needs XIEZUO_KAFKA_SASL_PASSWORD_FILE"):
        KafkaSecurity(protocol="SASL_SSL", sasl_username="xiezuo-cases")


def test_a_missing_or_empty_password_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KafkaSettingsError, match=r"XIEZUO_KAFKA_SASL_PASSWORD_FILE=.*no such file"):
        KafkaSecurity(
            protocol="SASL_SSL", sasl_username="u", sasl_password_file=tmp_path / "absent"
        )
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(KafkaSettingsError, match="is empty"):
        KafkaSecurity(protocol="SASL_SSL", sasl_username="u", sasl_password_file=empty)


def test_credentials_with_a_protocol_without_sasl_are_a_forgotten_protocol(
    password_file: Path,
) -> None:
    # Connecting unauthenticated instead would hide the mistake.
    with pytest.raises(
        KafkaSettingsError,
        match="XIEZUO_KAFKA_SASL_USERNAME, XIEZUO_KAFKA_SASL_PASSWORD_FILE set, but "
        "XIEZUO_KAFKA_SECURITY_PROTOCOL=PLAINTEXT does not use SASL",
    ):
        KafkaSecurity(sasl_username="u", sasl_password_file=password_file)


def test_tls_files_with_a_protocol_without_tls_are_refused(
    tls_files: tuple[Path, Path, Path], password_file: Path
) -> None:
    ca, _, _ = tls_files
    with pytest.raises(KafkaSettingsError, match=r"XIEZUO_KAFKA_CA_FILE set, but .*SASL_PLAINTEXT"):
        KafkaSecurity(
            protocol="SASL_PLAINTEXT",
            sasl_username="u",
            sasl_password_file=password_file,
            ca_file=ca,
        )


def test_a_client_certificate_needs_its_key(tls_files: tuple[Path, Path, Path]) -> None:
    ca, cert, _ = tls_files
    with pytest.raises(KafkaSettingsError, match="CERT_FILE and XIEZUO_KAFKA_KEY_FILE go together"):
        KafkaSecurity(protocol="SSL", ca_file=ca, cert_file=cert)


def test_an_unreadable_tls_file_fails_the_start_not_the_first_connection(
    tmp_path: Path, tls_files: tuple[Path, Path, Path]
) -> None:
    _, cert, _ = tls_files
    with pytest.raises(KafkaSettingsError, match=r"XIEZUO_KAFKA_CA_FILE=.*no such file"):
        KafkaSecurity(protocol="SSL", ca_file=tmp_path / "absent.pem")
    garbage = tmp_path / "garbage.key"
    garbage.write_text("not a key")
    with pytest.raises(KafkaSettingsError, match="cannot load the Kafka TLS files"):
        KafkaSecurity(protocol="SSL", cert_file=cert, key_file=garbage)


def test_sasl_ssl_client_arguments_carry_the_password_from_the_file(
    password_file: Path, tls_files: tuple[Path, Path, Path]
) -> None:
    ca, _, _ = tls_files
    security = KafkaSecurity(
        protocol="sasl_ssl",
        sasl_username="xiezuo-intake",
        sasl_password_file=password_file,
        ca_file=ca,
    )
    kwargs = security.client_kwargs()
    assert kwargs["security_protocol"] == "SASL_SSL"
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert kwargs["sasl_plain_username"] == "xiezuo-intake"
    # The trailing newline of a mounted Secret is not part of the password.
    assert kwargs["sasl_plain_password"] == PASSWORD
    context = kwargs["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED


def test_a_rotated_password_file_counts_for_the_next_client(password_file: Path) -> None:
    security = KafkaSecurity(
        protocol="SASL_PLAINTEXT", sasl_username="u", sasl_password_file=password_file
    )
    password_file.write_text("rotated")
    assert security.client_kwargs()["sasl_plain_password"] == "rotated"


def test_the_password_is_in_no_repr_and_no_log_description(
    password_file: Path, tls_files: tuple[Path, Path, Path]
) -> None:
    ca, cert, key = tls_files
    security = KafkaSecurity(
        protocol="SASL_SSL",
        sasl_username="xiezuo-cases",
        sasl_password_file=password_file,
        ca_file=ca,
        cert_file=cert,
        key_file=key,
    )
    assert PASSWORD not in repr(security)
    assert PASSWORD not in str(security.describe())
    assert security.describe()["kafka_user"] == "xiezuo-cases"


@pytest.mark.parametrize(
    ("mechanism", "kind"),
    [("SCRAM-SHA-512", SASLScram512), ("SCRAM-SHA-256", SASLScram256), ("PLAIN", SASLPlaintext)],
)
def test_the_subscribing_broker_gets_the_same_credentials(
    mechanism: str,
    kind: type[BaseSecurity],
    password_file: Path,
    tls_files: tuple[Path, Path, Path],
) -> None:
    ca, _, _ = tls_files
    security = KafkaSecurity(
        protocol="SASL_SSL",
        sasl_mechanism=mechanism,
        sasl_username="xiezuo-cases",
        sasl_password_file=password_file,
        ca_file=ca,
    ).broker_security()
    assert type(security) is kind
    assert security.use_ssl and security.ssl_context is not None
    assert (security.username, security.password) == ("xiezuo-cases", PASSWORD)  # type: ignore[attr-defined]


def test_mutual_tls_uses_the_client_certificate(tls_files: tuple[Path, Path, Path]) -> None:
    ca, cert, key = tls_files
    security = KafkaSecurity(protocol="SSL", ca_file=ca, cert_file=cert, key_file=key)
    assert security.client_kwargs()["security_protocol"] == "SSL"
    broker = security.broker_security()
    assert type(broker) is BaseSecurity and broker.use_ssl


def test_serve_with_contradictory_settings_exits_with_one_line_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], password_file: Path
) -> None:
    monkeypatch.setenv("XIEZUO_KAFKA_SASL_USERNAME", "xiezuo-intake")
    monkeypatch.setenv("XIEZUO_KAFKA_SASL_PASSWORD_FILE", str(password_file))
    monkeypatch.setattr(sys, "argv", ["xiezuo", "serve", "intake"])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith("xiezuo: invalid Kafka settings: XIEZUO_KAFKA_SASL_USERNAME")
    assert "Traceback" not in error and PASSWORD not in error


def _broker_security(tmp_path: Path, **users: str) -> BrokerSecurity:
    return BrokerSecurity(
        ca_file=tmp_path / "ca.pem",
        keystore_file=tmp_path / "broker.pem",
        broker_subject="CN=broker",
        admin_user="admin",
        admin_password="admin-secret",
        users=users,
    )


def test_a_secured_local_broker_enforces_acls_on_tls_listeners(tmp_path: Path) -> None:
    settings = _broker_security(tmp_path).server_properties(
        host="127.0.0.1", port=9093, ssl_port=9094, controller_port=9095
    )
    assert settings["listeners"] == (
        "SASL_SSL://127.0.0.1:9093,SSL://127.0.0.1:9094,CONTROLLER://127.0.0.1:9095"
    )
    assert "PLAINTEXT" not in settings["listener.security.protocol.map"]
    assert settings["authorizer.class.name"].endswith("StandardAuthorizer")
    assert settings["allow.everyone.if.no.acl.found"] == "false"
    assert settings["super.users"] == "User:CN=broker;User:admin"


def test_scram_users_are_created_at_format_and_odd_characters_refused(tmp_path: Path) -> None:
    arguments = _broker_security(tmp_path, **{"xiezuo-intake": "abc123"}).scram_arguments()
    assert arguments == [
        "--add-scram",
        "SCRAM-SHA-512=[name=admin,password=admin-secret]",
        "--add-scram",
        "SCRAM-SHA-512=[name=xiezuo-intake,password=abc123]",
    ]
    # The format tool's syntax has no quoting for these.
    with pytest.raises(LocalKafkaError, match="xiezuo-cases"):
        _broker_security(tmp_path, **{"xiezuo-cases": "a,b]"}).scram_arguments()
