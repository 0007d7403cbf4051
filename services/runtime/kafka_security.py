"""How every Kafka client of ours authenticates: TLS, SASL/SCRAM or mutual TLS, from settings.

One value, checked once at start-up, turned into aiokafka keyword arguments (producers,
consumers, admin clients) or a FastStream security object (the subscribing broker). Secrets
come from files and are read when a client is built, so a rotated file is picked up by the next
client without a release; the password is never kept on this object, logged or put in a repr.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from faststream.security import BaseSecurity

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")
DEFAULT_SASL_MECHANISM = "SCRAM-SHA-512"


class KafkaSettingsError(ValueError):
    """The Kafka security settings are contradictory, incomplete or point at unusable files."""


@dataclass(frozen=True)
class KafkaSecurity:
    """The `XIEZUO_KAFKA_*` security settings of one process, validated on construction."""

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password_file: Path | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    def __post_init__(self) -> None:
        protocol = self.protocol.strip().upper()
        if protocol not in PROTOCOLS:
            raise KafkaSettingsError(
                f"XIEZUO_KAFKA_SECURITY_PROTOCOL={self.protocol!r} is not supported; "
                f"use one of {', '.join(PROTOCOLS)}"
            )
        object.__setattr__(self, "protocol", protocol)
        if self.sasl_mechanism is not None:
            mechanism = self.sasl_mechanism.strip().upper()
            if mechanism not in SASL_MECHANISMS:
                raise KafkaSettingsError(
                    f"XIEZUO_KAFKA_SASL_MECHANISM={self.sasl_mechanism!r} is not supported; "
                    f"use one of {', '.join(SASL_MECHANISMS)}"
                )
            object.__setattr__(self, "sasl_mechanism", mechanism)
        self._check_sasl()
        self._check_tls()

    def _check_sasl(self) -> None:
        given = {
            "XIEZUO_KAFKA_SASL_MECHANISM": self.sasl_mechanism,
            "XIEZUO_KAFKA_SASL_USERNAME": self.sasl_username,
            "XIEZUO_KAFKA_SASL_PASSWORD_FILE": self.sasl_password_file,
        }
        if not self.uses_sasl:
            # Credentials next to a protocol without SASL mean a forgotten protocol setting:
            # connecting unauthenticated instead would hide it until the ACLs bite.
            stray = [name for name, value in given.items() if value is not None]
            if stray:
                raise KafkaSettingsError(
                    f"{', '.join(stray)} set, but XIEZUO_KAFKA_SECURITY_PROTOCOL={self.protocol}"
                    " does not use SASL; use SASL_SSL (or SASL_PLAINTEXT) or unset them"
                )
            return
        if not (self.sasl_username or "").strip():
            raise KafkaSettingsError(
                f"XIEZUO_KAFKA_SECURITY_PROTOCOL={self.protocol} needs XIEZUO_KAFKA_SASL_USERNAME"
            )
        if self.sasl_password_file is None:
            raise KafkaSettingsError(
                f"XIEZUO_KAFKA_SECURITY_PROTOCOL={self.protocol} needs "
                "XIEZUO_KAFKA_SASL_PASSWORD_FILE (a file holding the password)"
            )
        _readable("XIEZUO_KAFKA_SASL_PASSWORD_FILE", self.sasl_password_file)
        if not self.password():
            raise KafkaSettingsError(
                f"XIEZUO_KAFKA_SASL_PASSWORD_FILE={self.sasl_password_file} is empty"
            )

    def _check_tls(self) -> None:
        files = {
            "XIEZUO_KAFKA_CA_FILE": self.ca_file,
            "XIEZUO_KAFKA_CERT_FILE": self.cert_file,
            "XIEZUO_KAFKA_KEY_FILE": self.key_file,
        }
        if not self.uses_tls:
            stray = [name for name, value in files.items() if value is not None]
            if stray:
                raise KafkaSettingsError(
                    f"{', '.join(stray)} set, but XIEZUO_KAFKA_SECURITY_PROTOCOL={self.protocol}"
                    " does not use TLS; use SSL or SASL_SSL, or unset them"
                )
            return
        if (self.cert_file is None) != (self.key_file is None):
            raise KafkaSettingsError(
                "XIEZUO_KAFKA_CERT_FILE and XIEZUO_KAFKA_KEY_FILE go together "
                "(the client certificate and its private key, for mutual TLS)"
            )
        for name, path in files.items():
            if path is not None:
                _readable(name, path)
        # Load once now, so a wrong or mismatched file fails the start, not the first connect.
        self.ssl_context()

    @property
    def uses_sasl(self) -> bool:
        """Whether clients authenticate with a user name and password."""
        return self.protocol.startswith("SASL_")

    @property
    def uses_tls(self) -> bool:
        """Whether connections are encrypted (and the broker's certificate checked)."""
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def mechanism(self) -> str:
        """The SASL mechanism in force (SCRAM-SHA-512 unless configured)."""
        return self.sasl_mechanism or DEFAULT_SASL_MECHANISM

    def password(self) -> str:
        """The SASL password, read from its file now (a rotated file counts from here on)."""
        if self.sasl_password_file is None:
            return ""
        # Secrets mounted from Kubernetes often end with a newline that is not part of them.
        return self.sasl_password_file.read_text().rstrip("\r\n")

    def ssl_context(self) -> ssl.SSLContext | None:
        """A client TLS context: the CA (else the system's), plus our certificate for mTLS."""
        if not self.uses_tls:
            return None
        try:
            context = ssl.create_default_context(
                ssl.Purpose.SERVER_AUTH, cafile=_text(self.ca_file)
            )
            if self.cert_file is not None:
                context.load_cert_chain(str(self.cert_file), _text(self.key_file))
        except (ssl.SSLError, ValueError) as exc:
            raise KafkaSettingsError(
                "cannot load the Kafka TLS files "
                f"(CA {self.ca_file}, certificate {self.cert_file}, key {self.key_file}): {exc}"
            ) from exc
        return context

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for an aiokafka producer, consumer or admin client."""
        if self.protocol == "PLAINTEXT":
            return {}
        kwargs: dict[str, Any] = {"security_protocol": self.protocol}
        if self.uses_tls:
            kwargs["ssl_context"] = self.ssl_context()
        if self.uses_sasl:
            kwargs.update(
                sasl_mechanism=self.mechanism,
                sasl_plain_username=self.sasl_username,
                sasl_plain_password=self.password(),
            )
        return kwargs

    def broker_security(self) -> BaseSecurity | None:
        """The same, as FastStream's security object for a KafkaBroker."""
        from faststream.security import (
            BaseSecurity,
            SASLPlaintext,
            SASLScram256,
            SASLScram512,
        )

        if self.protocol == "PLAINTEXT":
            return None
        context = self.ssl_context()
        if not self.uses_sasl:
            return BaseSecurity(ssl_context=context)
        kind = {
            "SCRAM-SHA-512": SASLScram512,
            "SCRAM-SHA-256": SASLScram256,
            "PLAIN": SASLPlaintext,
        }[self.mechanism]
        assert self.sasl_username is not None
        return kind(self.sasl_username, self.password(), ssl_context=context, use_ssl=self.uses_tls)

    def describe(self) -> dict[str, str]:
        """What a log line may say about the connection (never the password)."""
        described = {"kafka_security_protocol": self.protocol}
        if self.uses_sasl:
            described["kafka_sasl_mechanism"] = self.mechanism
            described["kafka_user"] = self.sasl_username or ""
        if self.cert_file is not None:
            described["kafka_client_certificate"] = str(self.cert_file)
        return described


async def connection_refusal(
    bootstrap: str, security: KafkaSecurity, *, wait_seconds: float = 10.0
) -> BaseException | None:
    """Connect once to the first bootstrap address: the TLS or SASL error, if that is what fails.

    aiokafka logs the real cause and raises only "Unable to bootstrap", which reads like a broker
    still starting; this recovers a wrong password or certificate so it is reported as one.
    """
    from aiokafka.conn import create_conn
    from aiokafka.errors import AuthenticationFailedError, SaslAuthenticationFailed

    host, _, port = bootstrap.split(",")[0].strip().rpartition(":")
    try:
        connection = await asyncio.wait_for(
            create_conn(host, int(port), **security.client_kwargs()), wait_seconds
        )
    except (SaslAuthenticationFailed, AuthenticationFailedError, ssl.SSLError) as refused:
        return refused
    except Exception:
        # Unreachable, timed out, or an address we cannot parse: not a refusal of ours.
        return None
    with contextlib.suppress(Exception):
        connection.close()
    return None


def client_kwargs(security: KafkaSecurity | None) -> dict[str, Any]:
    """aiokafka keyword arguments for `security`; none (plain text) when it is None."""
    return security.client_kwargs() if security is not None else {}


def _readable(name: str, path: Path) -> None:
    if not path.is_file():
        raise KafkaSettingsError(f"{name}={path}: no such file")
    if not os.access(path, os.R_OK):
        raise KafkaSettingsError(f"{name}={path}: not readable by this process")


def _text(path: Path | None) -> str | None:
    return None if path is None else str(path)
