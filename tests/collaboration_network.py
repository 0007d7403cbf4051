"""A two-county network file with fresh keys, for collaboration tests."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.collaboration.signing_keys import public_pem


def network_yaml(
    keys: dict[str, Ed25519PrivateKey], *, version: int = 1, city: str = "city-lz"
) -> str:
    """Members `keys` (county → private key), all agreeing on every kind of help."""
    counties = "".join(
        f"  - county_id: {county}\n    name: 县{index}\n    public_key: |\n"
        + "".join(f"      {line}\n" for line in public_pem(key).strip().splitlines())
        for index, (county, key) in enumerate(keys.items())
    )
    members = ", ".join(keys)
    return (
        f"network: lz-network\nversion: {version}\n"
        f"city_commission: {{id: {city}, name: 某市纪委监委}}\n"
        f"counties:\n{counties}"
        f"agreements:\n  - counties: [{members}]\n"
        "    kinds: [verify_fact, witness_statement, registry_check, locate_person, other]\n"
    )
