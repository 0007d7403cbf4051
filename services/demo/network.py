"""The dev county network `xiezuo up` starts collaboration with: demo county and neighbour."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from services.demo.county import DEMO_COUNTY_FILE

NEIGHBOUR_COUNTY_FILE = DEMO_COUNTY_FILE.with_name("neighbour.yaml")
DEMO_COUNTY = "c-demo"
NEIGHBOUR_COUNTY = "c-qingyu"
CITY_ID = "city-xiling"
# Written into the state dir once imported: a second `up` imports nothing (same version).
NETWORK_FILE = "network.yaml"


def ensure_dev_network(state_dir: Path, env: dict[str, str]) -> Path | None:
    """Dev signing keys for both counties and the network file imported, once.

    Returns the file when it was imported now, None when an earlier run did. Raises
    RuntimeError naming the command that failed.
    """
    path = state_dir / NETWORK_FILE
    if path.exists():
        return None
    keys = {
        county: _xiezuo(env, "collaboration", "keygen", "--county", county)
        for county in (DEMO_COUNTY, NEIGHBOUR_COUNTY)
    }
    draft = path.with_suffix(".importing")
    draft.write_text(network_yaml(keys), encoding="utf-8")
    _xiezuo(env, "collaboration", "network", "import", str(draft))
    draft.replace(path)
    return path


def network_yaml(public_keys: dict[str, str]) -> str:
    """Version 1 of the dev network: two neighbouring counties helping with every kind."""
    names = {DEMO_COUNTY: "演示县", NEIGHBOUR_COUNTY: "青峪县"}
    counties = "".join(
        f"  - county_id: {county}\n    name: {names[county]}\n    public_key: |\n"
        + "".join(f"      {line}\n" for line in pem.strip().splitlines())
        for county, pem in public_keys.items()
    )
    return (
        "# The dev network `xiezuo up` imported (keys made by `xiezuo collaboration keygen`).\n"
        "network: xiling-network\nversion: 1\n"
        f"city_commission: {{id: {CITY_ID}, name: 西岭市纪委监委}}\n"
        f"counties:\n{counties}"
        f"agreements:\n  - counties: [{DEMO_COUNTY}, {NEIGHBOUR_COUNTY}]\n"
        "    kinds: [verify_fact, witness_statement, registry_check, locate_person, other]\n"
        "    joint_kinds: [discipline, duty_violation, duty_crime]\n"
    )


def _xiezuo(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "services.cli.main", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines() or ["no output"]
        raise RuntimeError(
            f"`xiezuo {' '.join(args[:3])}` exited with {done.returncode}: {lines[-1]}"
        )
    return done.stdout
