"""Who may sign in and with which claims: the dev directory, OIDC claim mapping, token minting.

The services trust tokens signed by the platform's issuer key, not the identity provider's;
so after OIDC (or the dev page) the console mints the user a platform token carrying the
claims the provider asserted (mapped by configurable claim names) and nothing more.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from services.console.session import SignedIn
from services.console.settings import ConsoleSettings
from services.runtime.settings import PlatformSettings
from services.runtime.tokens import ALL_ZONES, Principal, TokenIssuer, ensure_dev_keypair
from services.staffing.domain.county_file import parse_county
from services.staffing.domain.registry import CASE_WORKING_ROLES, Role

# What the registry calls people and what the cases rule set gates steps on differ: a team
# member works a case as `case_officer`, a hearer as `hearing_officer` (as the demo driver
# mints them). The dev token carries both, as a county's identity provider would be set up to.
WORKING_ROLES: dict[str, tuple[str, ...]] = {
    **{str(role): ("case_officer",) for role in CASE_WORKING_ROLES if role != Role.HEARING_STAFF},
    str(Role.HEARING_STAFF): ("hearing_officer",),
}


class ClaimsRefused(Exception):
    """The identity provider's claims do not name a usable platform identity."""


@dataclass(frozen=True)
class DevPerson:
    """Someone of the county file, as the dev sign-in page lists them."""

    person_id: str
    name: str
    roles: tuple[str, ...]
    county_id: str
    zone_id: str
    zone_name: str
    township_id: str

    def identity(self) -> SignedIn:
        """The claims a dev token for this person carries (county-level staff: every zone)."""
        working = {extra for role in self.roles for extra in WORKING_ROLES.get(role, ())}
        return SignedIn(
            subject=self.person_id,
            name=self.name,
            county_id=self.county_id,
            roles=tuple(sorted({*self.roles, *working})),
            zone_ids=(self.zone_id,) if self.zone_id else (ALL_ZONES,),
            township_ids=(self.township_id,) if self.township_id else (),
        )


def dev_directory(county_file: Path) -> list[DevPerson]:
    """The county file's people (informants left out: their identity is protected)."""
    if not county_file.is_file():
        # Said at start-up: a dev console listing nobody would only puzzle its user.
        raise FileNotFoundError(
            f"dev sign-in lists the people of {county_file}, which does not exist: set "
            "XIEZUO_CONSOLE_DEV_COUNTY_FILE, or XIEZUO_CONSOLE_DEV_SIGN_IN=false"
        )
    county = parse_county(county_file.read_text(encoding="utf-8"))
    zone_names = {zone.zone_id: zone.name for zone in county.zones}
    zone_of_township = {t.township_id: t.zone_id for t in county.townships}
    led: dict[str, str] = {}
    for zone in county.zones:
        for person_id in (zone.chief_id, zone.deputy_id):
            if person_id:
                led[person_id] = zone.zone_id
    people: list[DevPerson] = []
    for person in county.people:
        if Role.VILLAGE_INFORMANT in person.roles:
            continue
        township = person.home_township_id or ""
        zone_id = led.get(person.person_id) or zone_of_township.get(township, "")
        people.append(
            DevPerson(
                person_id=person.person_id,
                name=person.name,
                roles=tuple(sorted(str(role) for role in person.roles)),
                county_id=county.county_id,
                zone_id=zone_id,
                zone_name=zone_names.get(zone_id, ""),
                township_id=township,
            )
        )
    return people


class TokenMinter:
    """Signs platform tokens for signed-in users with the platform issuer's key."""

    def __init__(self, settings: ConsoleSettings, platform: PlatformSettings) -> None:
        key_file = settings.token_signing_key_file
        if key_file is None:
            # Development: the same local key the services trust when none is configured.
            key_file, _ = ensure_dev_keypair(platform.state_dir / "keys")
        self._issuer = TokenIssuer(
            key_file.read_bytes(),
            issuer=platform.token_issuer,
            audience=platform.token_audience,
            default_ttl=timedelta(seconds=settings.token_ttl_seconds),
        )

    def mint(self, identity: SignedIn) -> SignedIn:
        """identity with a freshly signed token for its claims."""
        principal = Principal(
            subject=identity.subject,
            roles=frozenset(identity.roles),
            county_id=identity.county_id,
            zone_ids=identity.zone_ids,
            township_ids=identity.township_ids,
        )
        token = self._issuer.issue(principal)
        return SignedIn(
            subject=identity.subject,
            name=identity.name,
            county_id=identity.county_id,
            roles=identity.roles,
            zone_ids=identity.zone_ids,
            township_ids=identity.township_ids,
            token=token,
        )


def identity_from_claims(claims: Mapping[str, Any], settings: ConsoleSettings) -> SignedIn:
    """Our claims from the provider's (ID token merged with userinfo), by the configured names."""

    def one(name: str, *, required: bool) -> str:
        value = claims.get(name)
        if isinstance(value, str) and value:
            return value
        if required:
            raise ClaimsRefused(f"the identity provider sent no {name!r} claim")
        return ""

    def many(name: str) -> tuple[str, ...]:
        value = claims.get(name)
        if value is None:
            return ()
        if isinstance(value, str):
            # Some providers send a space-separated list (like OAuth scopes).
            return tuple(part for part in value.split() if part)
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise ClaimsRefused(f"the {name!r} claim is not a list of strings")

    roles = many(settings.oidc_claim_roles)
    if not roles:
        raise ClaimsRefused(f"the identity provider sent no {settings.oidc_claim_roles!r}")
    subject = one(settings.oidc_claim_subject, required=True)
    return SignedIn(
        subject=subject,
        name=one(settings.oidc_claim_name, required=False) or subject,
        county_id=one(settings.oidc_claim_county, required=True),
        roles=roles,
        zone_ids=many(settings.oidc_claim_zones),
        township_ids=many(settings.oidc_claim_townships),
    )


def oidc_client(settings: ConsoleSettings) -> Any | None:
    """An Authlib client for the county's provider (code flow with PKCE), if one is set."""
    if not settings.oidc_enabled:
        return None
    from authlib.integrations.starlette_client import OAuth

    secret = None
    if settings.oidc_client_secret_file is not None:
        secret = settings.oidc_client_secret_file.read_text(encoding="utf-8").strip()
    issuer = str(settings.oidc_issuer).rstrip("/")
    oauth = OAuth()
    oauth.register(
        "county",
        client_id=settings.oidc_client_id,
        client_secret=secret,
        server_metadata_url=f"{issuer}/.well-known/openid-configuration",
        client_kwargs={"scope": settings.oidc_scopes, "code_challenge_method": "S256"},
    )
    return oauth.create_client("county")
