"""Signed bearer tokens: who is calling, in which roles, over which county, zones and townships."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from services.runtime.keyfiles import create_once

ALGORITHM = "EdDSA"
# A zone_ids entry that grants every zone of the token's county (county-level staff).
ALL_ZONES = "*"
DEV_ISSUER = "xiezuo-dev"
DEV_AUDIENCE = "xiezuo"
DEV_PRIVATE_KEY_FILE = "dev-signing-key.pem"
DEV_PUBLIC_KEY_FILE = "dev-signing-key.pub.pem"
_REQUIRED_CLAIMS = ("sub", "iss", "aud", "iat", "exp", "jti", "roles", "county_id")
# Verified tokens remembered per verifier. A client sends the same token on every call, and an
# Ed25519 check plus PyJWT's decoding cost ~0.25 ms a call (about 6 % of intake's CPU at load).
VERIFIED_TOKENS_KEPT = 4096


class TokenInvalid(Exception):
    """A bearer token was rejected; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Principal:
    """The authenticated caller and the scope its token grants."""

    subject: str
    roles: frozenset[str] = field(default_factory=frozenset)
    county_id: str = ""
    zone_ids: tuple[str, ...] = ()
    township_ids: tuple[str, ...] = ()

    def has_role(self, role: str) -> bool:
        """Whether the token grants this role."""
        return role in self.roles

    def can_see_county(self, county_id: str) -> bool:
        """Whether the token is scoped to this county."""
        return bool(county_id) and county_id == self.county_id

    def can_see_zone(self, county_id: str, zone_id: str) -> bool:
        """Whether the token covers this zone of this county (or all of its zones)."""
        if not self.can_see_county(county_id) or not zone_id:
            return False
        return ALL_ZONES in self.zone_ids or zone_id in self.zone_ids


def key_id(public_key: Ed25519PublicKey) -> str:
    """Stable short id of a public key, sent as the JWT `kid` so verifiers pick the right key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def _as_bytes(pem: str | bytes) -> bytes:
    """PEM text as bytes."""
    return pem.encode("ascii") if isinstance(pem, str) else pem


def load_private_key(pem: str | bytes) -> Ed25519PrivateKey:
    """Parse an unencrypted Ed25519 private key PEM."""
    key = serialization.load_pem_private_key(_as_bytes(pem), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("signing key is not an Ed25519 private key")
    return key


def load_public_key(pem: str | bytes) -> Ed25519PublicKey:
    """Parse an Ed25519 public key PEM."""
    key = serialization.load_pem_public_key(_as_bytes(pem))
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("verification key is not an Ed25519 public key")
    return key


class TokenIssuer:
    """Mints EdDSA-signed bearer tokens for principals."""

    def __init__(
        self,
        private_key_pem: str | bytes,
        *,
        issuer: str,
        audience: str,
        default_ttl: timedelta = timedelta(hours=1),
    ) -> None:
        self._key = load_private_key(private_key_pem)
        self._kid = key_id(self._key.public_key())
        self._issuer = issuer
        self._audience = audience
        self._default_ttl = default_ttl

    def issue(
        self,
        principal: Principal,
        *,
        ttl: timedelta | None = None,
        now: datetime | None = None,
    ) -> str:
        """A signed token for principal, valid from now for ttl."""
        issued_at = now or datetime.now(UTC)
        claims = {
            "sub": principal.subject,
            "roles": sorted(principal.roles),
            "county_id": principal.county_id,
            "zone_ids": list(principal.zone_ids),
            "township_ids": list(principal.township_ids),
            "iss": self._issuer,
            "aud": self._audience,
            "iat": issued_at,
            "exp": issued_at + (ttl if ttl is not None else self._default_ttl),
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM, headers={"kid": self._kid})


class TokenVerifier:
    """Checks bearer tokens against the configured public keys (several, so keys can rotate)."""

    def __init__(
        self,
        public_key_pems: Sequence[str | bytes],
        *,
        issuer: str,
        audience: str,
        leeway: timedelta = timedelta(seconds=30),
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not public_key_pems:
            raise ValueError("TokenVerifier needs at least one public key")
        keys = [load_public_key(pem) for pem in public_key_pems]
        self._keys: Mapping[str, Ed25519PublicKey] = {key_id(k): k for k in keys}
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway
        self._clock = clock
        # token -> (principal, exp). The keys, issuer and audience never change for this
        # verifier, so the same bytes verify the same way again; only expiry moves with time.
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    def verify(self, token: str) -> Principal:
        """The principal a valid token names; raises TokenInvalid with the reason otherwise."""
        known = self._verified.get(token)
        if known is not None:
            principal, expires = known
            if self._clock() > expires + self._leeway.total_seconds():
                del self._verified[token]
                raise TokenInvalid("token has expired")
            self._verified.move_to_end(token)
            return principal
        principal, expires = self._verify_signed(token)
        self._verified[token] = (principal, expires)
        if len(self._verified) > VERIFIED_TOKENS_KEPT:
            self._verified.popitem(last=False)
        return principal

    def _verify_signed(self, token: str) -> tuple[Principal, float]:
        """Full check of signature and claims: the principal and the token's expiry."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            # PyJWT's text here is a codec or padding error about the caller's bytes.
            raise TokenInvalid("malformed token: not a signed JWT") from None
        # Pinning the algorithm blocks "none" and HMAC-with-public-key confusion.
        if header.get("alg") != ALGORITHM:
            raise TokenInvalid(f"algorithm {str(header.get('alg'))[:32]!r} is not allowed")
        kid = header.get("kid")
        candidates = (
            [self._keys[kid]] if isinstance(kid, str) and kid in self._keys else self._keys.values()
        )
        for key in candidates:
            try:
                claims = jwt.decode(
                    token,
                    key,
                    algorithms=[ALGORITHM],
                    audience=self._audience,
                    issuer=self._issuer,
                    leeway=self._leeway,
                    options={"require": list(_REQUIRED_CLAIMS)},
                )
            except jwt.InvalidSignatureError:
                continue
            except jwt.ExpiredSignatureError:
                raise TokenInvalid("token has expired") from None
            except jwt.ImmatureSignatureError:
                raise TokenInvalid("token is not yet valid (iat/nbf in the future)") from None
            except jwt.InvalidAudienceError:
                raise TokenInvalid(f"token audience is not {self._audience!r}") from None
            except jwt.InvalidIssuerError:
                raise TokenInvalid(f"token issuer is not {self._issuer!r}") from None
            except jwt.MissingRequiredClaimError as error:
                raise TokenInvalid(f"token lacks the {error.claim!r} claim") from None
            except jwt.InvalidTokenError:
                raise TokenInvalid("invalid token: its claims could not be read") from None
            return _principal_from_claims(claims), float(claims["exp"])
        raise TokenInvalid("token signature does not match any trusted key")


def _string(claims: Mapping[str, Any], name: str) -> str:
    """A claim that must be a non-empty string."""
    value = claims.get(name)
    if not isinstance(value, str) or not value:
        raise TokenInvalid(f"claim {name!r} must be a non-empty string")
    return value


def _strings(claims: Mapping[str, Any], name: str) -> tuple[str, ...]:
    """A claim that must be a list of strings (absent means empty)."""
    value = claims.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TokenInvalid(f"claim {name!r} must be a list of strings")
    return tuple(value)


def _principal_from_claims(claims: Mapping[str, Any]) -> Principal:
    """Build a Principal from verified claims, checking their shapes."""
    return Principal(
        subject=_string(claims, "sub"),
        roles=frozenset(_strings(claims, "roles")),
        county_id=_string(claims, "county_id"),
        zone_ids=_strings(claims, "zone_ids"),
        township_ids=_strings(claims, "township_ids"),
    )


def ensure_dev_keypair(directory: Path) -> tuple[Path, Path]:
    """(private, public) PEM paths of the dev signing key in directory, creating them if missing."""
    private_path = directory / DEV_PRIVATE_KEY_FILE
    public_path = directory / DEV_PUBLIC_KEY_FILE
    candidate = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Services starting together race here; whichever key landed first is the key.
    key = load_private_key(create_once(private_path, candidate))
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    create_once(public_path, public_pem, mode=0o644)
    return private_path, public_path


def mint_dev_token(
    *,
    key_dir: Path,
    subject: str,
    roles: Iterable[str],
    county_id: str,
    zone_ids: Iterable[str] = (),
    township_ids: Iterable[str] = (),
    ttl_seconds: int = 3600,
    issuer: str = DEV_ISSUER,
    audience: str = DEV_AUDIENCE,
) -> str:
    """A token signed with the dev key in key_dir (created if missing), for the CLI and tests."""
    private_path, _ = ensure_dev_keypair(key_dir)
    minter = TokenIssuer(private_path.read_bytes(), issuer=issuer, audience=audience)
    principal = Principal(
        subject=subject,
        roles=frozenset(roles),
        county_id=county_id,
        zone_ids=tuple(zone_ids),
        township_ids=tuple(township_ids),
    )
    return minter.issue(principal, ttl=timedelta(seconds=ttl_seconds))
