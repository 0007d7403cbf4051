"""Write schemas/events/<type>.json from the event contracts (or, with --check, verify them).

One self-contained JSON Schema (draft 2020-12) per CloudEvents type: the `data` of every event
of that type validates against it, and `ce_dataschema` on the record names it. The schemas are
open (no `additionalProperties: false`): a `.vN` type may gain optional fields, and a consumer
holding an older copy must keep accepting newer payloads.

`--dump ROOT` prints the schemas of the contracts found under ROOT (a checkout or an extracted
release) as one JSON object; tools/check_compat.py uses it for releases cut before this tool.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "schemas" / "events"
DRAFT = "https://json-schema.org/draft/2020-12/schema"
# CloudEvents wants an absolute URI in `dataschema`; the schemas have no public host, so the
# `xiezuo:` scheme names this repository and the rest is the file's path in it (and in every tag).
SCHEMA_URI_PREFIX = "xiezuo:schemas/events/"


def schema_uri(event_type: str) -> str:
    """The `dataschema` of an event type: `xiezuo:schemas/events/<type>.json`."""
    return f"{SCHEMA_URI_PREFIX}{event_type}.json"


def _open(node: Any) -> Any:
    # Producers are strict (extra="forbid"); the published schema must not be, see the docstring.
    if isinstance(node, dict):
        return {
            key: _open(value)
            for key, value in node.items()
            if not (key == "additionalProperties" and value is False)
        }
    if isinstance(node, list):
        return [_open(item) for item in node]
    return node


def schema_of(event: Any) -> dict[str, Any]:
    """The published JSON Schema of one contract class."""
    generated = _open(event.model_json_schema())
    # Releases before `key_pattern` existed keyed every type but a few by zone; say so plainly.
    key = getattr(event, "key_pattern", None) or "<county_id>:<zone_id>"
    why = (event.partition_key.__doc__ or "").strip().split("\n\n")[0]
    schema: dict[str, Any] = {
        "$schema": DRAFT,
        "$id": schema_uri(event.event_type),
        "title": event.event_type,
        "description": (event.__doc__ or "").strip(),
        "x-topic": event.topic,
        "x-kafka-key": key,
        **({"x-kafka-key-reason": why} if key != "<county_id>:<zone_id>" else {}),
    }
    schema.update({k: v for k, v in generated.items() if k not in ("title", "description")})
    return schema


def schemas(event_types: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every event type's schema, by type name."""
    return {name: schema_of(event) for name, event in sorted(event_types.items())}


def render(schema: dict[str, Any]) -> str:
    """Stable JSON text for one schema file."""
    return json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def current() -> dict[str, dict[str, Any]]:
    """The schemas of the contracts in this checkout."""
    from services.contracts.registry import EVENT_TYPES

    return schemas(EVENT_TYPES)


def stale(output: Path = OUTPUT) -> list[str]:
    """Files under `output` that differ from, lack or outlive a generated schema."""
    wanted = {f"{name}.json": render(schema) for name, schema in current().items()}
    present = {path.name: path.read_text() for path in output.glob("*.json")}
    names = sorted(set(wanted) | set(present))
    return [name for name in names if wanted.get(name) != present.get(name)]


def write(output: Path = OUTPUT) -> int:
    """Write every schema and delete files of types no longer in the contracts."""
    output.mkdir(parents=True, exist_ok=True)
    wanted = {f"{name}.json": render(schema) for name, schema in current().items()}
    for path in output.glob("*.json"):
        if path.name not in wanted:
            path.unlink()
    for name, text in wanted.items():
        target = output / name
        if not target.exists() or target.read_text() != text:
            target.write_text(text)
    return len(wanted)


def dump(root: Path) -> dict[str, dict[str, Any]]:
    """Schemas of the contracts under another tree (run in a fresh interpreter)."""
    if "services" in sys.modules:
        raise RuntimeError("dump needs a fresh interpreter: `services` is already imported")
    sys.path.insert(0, str(root))
    import services

    if Path(services.__file__).resolve().parent != (root / "services").resolve():
        raise RuntimeError(f"imported {services.__file__}, not the tree under {root}")
    return current()


def main() -> int:
    """Write the schemas, check them (--check, exit 1 when stale) or dump another tree's."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--dump", type=Path, metavar="ROOT")
    args = parser.parse_args()
    if args.dump:
        json.dump(dump(args.dump), sys.stdout, sort_keys=True)
        return 0
    if args.check:
        differing = stale()
        if differing:
            print(
                "gen_event_schemas: schemas/events is stale "
                f"({', '.join(differing)}); run `make asyncapi`",
                file=sys.stderr,
            )
            return 1
        print("gen_event_schemas: schemas/events is up to date")
        return 0
    count = write()
    print(f"gen_event_schemas: wrote {OUTPUT.relative_to(ROOT)} ({count} event types)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
