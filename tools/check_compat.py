"""Compatibility gates against the last release tag (`vX.Y.Z`, read from git).

gRPC: `buf breaking` of proto/ against the tag's proto/ (buf.yaml's `breaking` rules).
Events: every event type of the release must still exist, and its schema may only have gained
optional fields; anything else needs a new `.vN+1` type published side by side.

The release's files are read with `git archive`, so this works in any clone that has the tag
(a plain `git clone` copies tags; a shallow one may not, and then this says so and fails).
Exit 0 compatible, 1 breaking, 2 the baseline cannot be read.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RELEASE_TAG = re.compile(r"^v(\d+)\.(\d+)\.(\d+)$")
# Words only: a change to these is not a change to what a consumer receives. (The key pattern
# is not compared: releases before `key_pattern` cannot state theirs; review key changes.)
_PROSE = ("title", "description", "examples", "x-kafka-key", "x-kafka-key-reason", "$id")


class BaselineError(RuntimeError):
    """The last release cannot be read from git."""


def _git(*args: str, repo: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=False)


def recorded_releases(repo: Path = ROOT) -> dict[str, str]:
    """Release tag → commit, as RELEASES records them (comments and blank lines skipped)."""
    path = repo / "RELEASES"
    if not path.exists():
        return {}
    releases: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        parts = text.split()
        if (
            len(parts) != 2
            or not RELEASE_TAG.match(parts[0])
            or not re.fullmatch(r"[0-9a-f]{40}", parts[1])
        ):
            raise BaselineError(f"RELEASES line {number}: expected `vX.Y.Z <40-hex commit>`")
        releases[parts[0]] = parts[1]
    return releases


def _version(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in RELEASE_TAG.findall(name)[0])


def _commit_of(ref: str, repo: Path) -> str | None:
    found = _git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", repo=repo)
    return found.stdout.decode().strip() if found.returncode == 0 else None


def last_release(repo: Path = ROOT) -> str:
    """A git ref for the last release: its tag, or the commit RELEASES names when untagged here.

    The highest version among the tags reachable from HEAD and the lines of RELEASES wins; a
    tag that points at another commit than RELEASES says is refused, since one of them lies.
    """
    listed = _git("tag", "--list", "v*", "--merged", "HEAD", repo=repo)
    if listed.returncode != 0:
        raise BaselineError(f"git tag failed: {listed.stderr.decode().strip()}")
    tags = [name for name in listed.stdout.decode().split() if RELEASE_TAG.match(name)]
    recorded = recorded_releases(repo)
    for name in tags:
        commit = recorded.get(name)
        if commit is not None and _commit_of(name, repo) != commit:
            raise BaselineError(f"tag {name} does not point at {commit[:12]} as RELEASES says")
    candidates = set(tags) | set(recorded)
    if not candidates:
        shallow = _git("rev-parse", "--is-shallow-repository", repo=repo).stdout.strip()
        hint = (
            "this clone is shallow: `git fetch --tags --unshallow`"
            if shallow == b"true"
            else "fetch the tags (`git fetch --tags`); releases are tagged vX.Y.Z (CHANGELOG.md)"
        )
        raise BaselineError(f"no release tag vX.Y.Z reachable from HEAD; {hint}")
    newest = max(candidates, key=_version)
    if newest in tags:
        return newest
    commit = recorded[newest]
    if _commit_of(commit, repo) is None:
        raise BaselineError(
            f"release {newest} is untagged here and its commit {commit[:12]} is not in this "
            "clone (shallow?): `git fetch --tags --unshallow`"
        )
    return commit


def extract(tag: str, paths: list[str], into: Path, repo: Path = ROOT) -> list[str]:
    """Extract `paths` of `tag` under `into`; returns those the tag has."""
    present = [
        path for path in paths if _git("cat-file", "-e", f"{tag}:{path}", repo=repo).returncode == 0
    ]
    if not present:
        return []
    archive = _git("archive", "--format=tar", tag, *present, repo=repo)
    if archive.returncode != 0:
        raise BaselineError(f"git archive {tag} failed: {archive.stderr.decode().strip()}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    return present


# --- gRPC -------------------------------------------------------------------------------------


def check_grpc(tag: str, proto: Path, buf: str) -> list[str]:
    """`buf breaking` of `proto` against the tag's proto/; its findings, one per line."""
    with tempfile.TemporaryDirectory(prefix="xiezuo-release-") as tmp:
        if not extract(tag, ["proto"], Path(tmp)):
            raise BaselineError(f"{tag} has no proto/")
        result = subprocess.run(
            [buf, "breaking", str(proto), "--against", str(Path(tmp) / "proto")],
            capture_output=True,
            text=True,
            check=False,
        )
    if result.returncode == 0:
        return []
    findings = (result.stdout + result.stderr).strip().splitlines()
    return findings or [f"buf breaking exited {result.returncode}"]


# --- events -----------------------------------------------------------------------------------


def release_schemas(tag: str, repo: Path = ROOT) -> dict[str, dict[str, Any]]:
    """The event schemas as released: the tag's schemas/events, or made from its contracts."""
    with tempfile.TemporaryDirectory(prefix="xiezuo-release-") as tmp:
        base = Path(tmp)
        if extract(tag, ["schemas/events"], base, repo):
            return {
                path.name.removesuffix(".json"): json.loads(path.read_text())
                for path in sorted((base / "schemas" / "events").glob("*.json"))
            }
        # Releases cut before schemas/ existed: generate from the tag's own contracts.
        if not extract(tag, ["services/__init__.py", "services/contracts"], base, repo):
            raise BaselineError(f"{tag} has neither schemas/events nor services/contracts")
        dumped = subprocess.run(
            [sys.executable, str(ROOT / "tools" / "gen_event_schemas.py"), "--dump", tmp],
            capture_output=True,
            text=True,
            check=False,
            cwd=tmp,
        )
        if dumped.returncode != 0:
            raise BaselineError(f"cannot build {tag}'s event schemas: {dumped.stderr.strip()}")
        loaded: dict[str, dict[str, Any]] = json.loads(dumped.stdout)
        return loaded


def directory_schemas(directory: Path) -> dict[str, dict[str, Any]]:
    """Schemas from a schemas/events directory."""
    return {
        path.name.removesuffix(".json"): json.loads(path.read_text())
        for path in sorted(directory.glob("*.json"))
    }


def _resolve(node: Any, root: dict[str, Any]) -> Any:
    # Inline local $refs so a field moved into $defs compares by what it means.
    if isinstance(node, dict):
        if set(node) == {"$ref"} and node["$ref"].startswith("#/$defs/"):
            return _resolve(root["$defs"][node["$ref"].removeprefix("#/$defs/")], root)
        return {
            key: _resolve(value, root)
            for key, value in node.items()
            if key not in _PROSE and key not in ("$defs", "x-topic")
        }
    if isinstance(node, list):
        return [_resolve(item, root) for item in node]
    return node


def _is_object(node: Any) -> bool:
    return isinstance(node, dict) and node.get("type") == "object" and "properties" in node


def _differences(old: Any, new: Any, where: str) -> Iterator[str]:
    if _is_object(old) and _is_object(new):
        old_fields, new_fields = old["properties"], new["properties"]
        old_required, new_required = set(old.get("required", ())), set(new.get("required", ()))
        for name, field in old_fields.items():
            path = f"{where}.{name}" if where else name
            if name not in new_fields:
                yield f"field `{path}` removed"
            else:
                yield from _differences(field, new_fields[name], path)
        for name in sorted(new_required - old_required):
            path = f"{where}.{name}" if where else name
            if name in old_fields:
                yield f"field `{path}` became required"
            else:
                yield f"new field `{path}` is required (an added field must be optional)"
        rest_old = {k: v for k, v in old.items() if k not in ("properties", "required")}
        rest_new = {k: v for k, v in new.items() if k not in ("properties", "required")}
        if rest_old != rest_new:
            yield f"`{where or '(payload)'}` changed its object rules"
        return
    if (
        isinstance(old, dict)
        and isinstance(new, dict)
        and old.get("type") == new.get("type") == "array"
    ):
        if {k: v for k, v in old.items() if k != "items"} != {
            k: v for k, v in new.items() if k != "items"
        }:
            yield f"field `{where}` changed from {_short(old)} to {_short(new)}"
        yield from _differences(old.get("items"), new.get("items"), f"{where}[]")
        return
    if old != new:
        yield f"field `{where}` changed from {_short(old)} to {_short(new)}"


def _short(node: Any) -> str:
    return json.dumps(node, sort_keys=True)[:120]


def _next_version(event_type: str) -> str:
    stem, _, version = event_type.rpartition(".v")
    return f"{stem}.v{int(version) + 1}" if version.isdigit() else f"{event_type}2"


def check_events(
    released: dict[str, dict[str, Any]], candidate: dict[str, dict[str, Any]]
) -> list[str]:
    """Why `candidate` breaks the released event types, one sentence each (empty: compatible)."""
    problems: list[str] = []
    for event_type, old in sorted(released.items()):
        if event_type not in candidate:
            problems.append(
                f"{event_type}: removed; a released type stays published until it is retired "
                "as docs/consumers.md describes"
            )
            continue
        if old.get("x-topic") != candidate[event_type].get("x-topic"):
            problems.append(
                f"{event_type}: moved from topic {old.get('x-topic')} to "
                f"{candidate[event_type].get('x-topic')}; publish {_next_version(event_type)} "
                "on the new topic side by side instead"
            )
        found = list(
            _differences(
                _resolve(old, old), _resolve(candidate[event_type], candidate[event_type]), ""
            )
        )
        if found:
            problems.append(
                f"{event_type}: {'; '.join(found)}. A released .vN type may only gain optional "
                f"fields: publish {_next_version(event_type)} side by side instead "
                "(docs/consumers.md, 'Introducing a .v2')"
            )
    return problems


def main() -> int:
    """Run both gates against the last release (or --against TAG)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--against", help="release tag to compare with (default: the last)")
    parser.add_argument("--proto", type=Path, default=ROOT / "proto")
    parser.add_argument("--schemas", type=Path, default=ROOT / "schemas" / "events")
    parser.add_argument("--only", choices=("grpc", "events"))
    parser.add_argument("--buf", default=str(Path(sys.executable).parent / "buf"))
    args = parser.parse_args()
    try:
        tag = args.against or last_release()
        failures: list[str] = []
        if args.only in (None, "grpc"):
            failures += [f"gRPC: {line}" for line in check_grpc(tag, args.proto, args.buf)]
        if args.only in (None, "events"):
            released = release_schemas(tag)
            candidate = directory_schemas(args.schemas)
            failures += [f"events: {line}" for line in check_events(released, candidate)]
    except BaselineError as exc:
        print(f"check_compat: {exc}", file=sys.stderr)
        return 2
    if failures:
        print(f"check_compat: breaking changes against release {tag}:", file=sys.stderr)
        for line in failures:
            print(f"  {line}", file=sys.stderr)
        if any(line.startswith("gRPC") for line in failures):
            print(
                "  gRPC: keep the field/method (deprecate it) or add a new package version "
                "(xiezuo.<service>.v2) beside v1",
                file=sys.stderr,
            )
        return 1
    print(f"check_compat: proto/ and schemas/events are compatible with release {tag}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
