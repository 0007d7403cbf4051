"""Settings of the web console (`XIEZUO_CONSOLE_<NAME>`), beside the platform-wide ones."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.demo.county import DEMO_COUNTY_FILE

DEFAULT_HTTP_PORT = 8080
# After the five services' 9101-9105.
DEFAULT_METRICS_PORT = 9106
LANGUAGES = ("zh", "en")


class ConsoleSettings(BaseSettings):
    """How the console serves, signs people in and reaches the services."""

    model_config = SettingsConfigDict(env_prefix="XIEZUO_CONSOLE_", extra="ignore")

    http_host: str = "127.0.0.1"
    # 0 picks a free port (tests); the address is printed on the ready line either way.
    http_port: int = Field(default=DEFAULT_HTTP_PORT, ge=0, le=65535)
    # Prometheus on a port of its own, like the services' (never behind the public Ingress).
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=DEFAULT_METRICS_PORT, ge=0, le=65535)
    # Where people reach the console (behind an Ingress); the OIDC redirect URI is built on it.
    public_url: str | None = None
    # Production: Secure cookies, no dev sign-in, OIDC and a real session key required.
    production: bool = False
    # The page that signs anyone in as any person of the county file, with a dev token.
    dev_sign_in: bool = True
    dev_county_file: Path = DEMO_COUNTY_FILE
    # The key that signs session cookies; default `<state_dir>/keys/console-session.key`.
    session_secret_file: Path | None = None
    session_max_age_seconds: int = Field(default=8 * 3600, gt=0)
    # Lifetime of the platform token minted at sign-in (expired: signed out on the next call).
    token_ttl_seconds: int = Field(default=8 * 3600, gt=0)
    # Ed25519 PEM that signs the platform tokens of OIDC users; dev: the local dev key.
    token_signing_key_file: Path | None = None
    grpc_timeout_seconds: float = Field(default=10.0, gt=0)
    default_language: str = Field(default="zh", pattern="^(zh|en)$")
    # OpenID Connect: the county's identity provider (issuer URL with /.well-known discovery).
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret_file: Path | None = None
    oidc_scopes: str = "openid profile"
    # Which ID-token / userinfo claims carry our token's claims.
    oidc_claim_subject: str = "sub"
    oidc_claim_name: str = "name"
    oidc_claim_roles: str = "roles"
    oidc_claim_county: str = "county_id"
    oidc_claim_zones: str = "zone_ids"
    oidc_claim_townships: str = "township_ids"

    @model_validator(mode="after")
    def _production_is_closed(self) -> ConsoleSettings:
        # Checked at start-up so a production console never serves the dev sign-in page.
        if self.production:
            if self.dev_sign_in:
                raise ValueError("XIEZUO_CONSOLE_DEV_SIGN_IN must be false in production")
            if self.session_secret_file is None:
                raise ValueError("production needs XIEZUO_CONSOLE_SESSION_SECRET_FILE")
            if not self.oidc_enabled:
                raise ValueError("production needs XIEZUO_CONSOLE_OIDC_ISSUER and _CLIENT_ID")
            if self.token_signing_key_file is None:
                raise ValueError("production needs XIEZUO_CONSOLE_TOKEN_SIGNING_KEY_FILE")
        return self

    @property
    def oidc_enabled(self) -> bool:
        """Whether an identity provider is configured."""
        return bool(self.oidc_issuer and self.oidc_client_id)
