"""The release gates: `make check` refuses breaking proto and event changes against the tag."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "check_compat.py"
INTAKE_PROTO = Path("xiezuo/intake/v1/intake.proto")
CLUE = "xiezuo.intake.clue_registered.v1"

pytestmark = pytest.mark.skipif(
    subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "-q", "--verify", "refs/tags/v0.1.0"],
        capture_output=True,
        check=False,
    ).returncode
    != 0,
    reason="the release tag v0.1.0 is not in this clone (git fetch --tags)",
)


def _gate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TOOL), *args], capture_output=True, text=True, check=False, cwd=ROOT
    )


def _proto_copy(tmp_path: Path, old: str, new: str) -> Path:
    proto = tmp_path / "proto"
    shutil.copytree(ROOT / "proto", proto)
    text = (proto / INTAKE_PROTO).read_text()
    assert old in text
    (proto / INTAKE_PROTO).write_text(text.replace(old, new, 1))
    return proto


def _schemas_copy(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    schemas = tmp_path / "events"
    shutil.copytree(ROOT / "schemas" / "events", schemas)
    return schemas, json.loads((schemas / f"{CLUE}.json").read_text())


def _write(schemas: Path, schema: dict[str, Any]) -> None:
    (schemas / f"{CLUE}.json").write_text(json.dumps(schema))


def test_the_checked_in_tree_passes_both_gates() -> None:
    result = _gate()
    assert result.returncode == 0, result.stderr
    assert "compatible with release v0.1.0" in result.stdout


def test_grpc_gate_fails_on_a_removed_field(tmp_path: Path) -> None:
    proto = _proto_copy(tmp_path, "  bool linked = 5;\n", "")
    result = _gate("--only", "grpc", "--proto", str(proto))
    assert result.returncode == 1
    assert "breaking changes against release v0.1.0" in result.stderr
    assert "SubmitReportResponse" in result.stderr and "linked" in result.stderr


def test_grpc_gate_passes_an_added_field(tmp_path: Path) -> None:
    proto = _proto_copy(
        tmp_path, "  bool linked = 5;\n", "  bool linked = 5;\n  string added_for_test = 99;\n"
    )
    result = _gate("--only", "grpc", "--proto", str(proto))
    assert result.returncode == 0, result.stderr


def test_event_gate_fails_on_a_removed_field(tmp_path: Path) -> None:
    schemas, schema = _schemas_copy(tmp_path)
    del schema["properties"]["township_id"]
    schema["required"].remove("township_id")
    _write(schemas, schema)
    result = _gate("--only", "events", "--schemas", str(schemas))
    assert result.returncode == 1
    assert "field `township_id` removed" in result.stderr
    assert "publish xiezuo.intake.clue_registered.v2 side by side" in result.stderr


def test_event_gate_fails_on_a_type_change(tmp_path: Path) -> None:
    schemas, schema = _schemas_copy(tmp_path)
    schema["properties"]["township_id"] = {"type": "integer"}
    _write(schemas, schema)
    result = _gate("--only", "events", "--schemas", str(schemas))
    assert result.returncode == 1
    assert "field `township_id` changed" in result.stderr
    assert "publish xiezuo.intake.clue_registered.v2 side by side" in result.stderr


def test_event_gate_fails_on_a_new_required_field(tmp_path: Path) -> None:
    schemas, schema = _schemas_copy(tmp_path)
    schema["properties"]["severity"] = {"type": "string"}
    schema["required"].append("severity")
    _write(schemas, schema)
    result = _gate("--only", "events", "--schemas", str(schemas))
    assert result.returncode == 1
    assert "new field `severity` is required" in result.stderr


def test_event_gate_fails_on_a_removed_type(tmp_path: Path) -> None:
    schemas, _ = _schemas_copy(tmp_path)
    (schemas / f"{CLUE}.json").unlink()
    result = _gate("--only", "events", "--schemas", str(schemas))
    assert result.returncode == 1
    assert f"{CLUE}: removed" in result.stderr


def test_event_gate_passes_an_added_optional_field_and_a_new_version(tmp_path: Path) -> None:
    schemas, schema = _schemas_copy(tmp_path)
    schema["properties"]["severity"] = {"anyOf": [{"type": "string"}, {"type": "null"}]}
    _write(schemas, schema)
    v2 = dict(schema, title="xiezuo.intake.clue_registered.v2")
    v2["required"] = [*schema["required"], "severity"]
    (schemas / "xiezuo.intake.clue_registered.v2.json").write_text(json.dumps(v2))
    result = _gate("--only", "events", "--schemas", str(schemas))
    assert result.returncode == 0, result.stderr


def test_event_gate_sees_into_nested_objects(tmp_path: Path) -> None:
    schemas = tmp_path / "events"
    shutil.copytree(ROOT / "schemas" / "events", schemas)
    name = "xiezuo.staffing.team_assigned.v1"
    schema = json.loads((schemas / f"{name}.json").read_text())
    del schema["$defs"]["TeamMember"]["properties"]["leader"]
    (schemas / f"{name}.json").write_text(json.dumps(schema))
    result = _gate("--only", "events", "--schemas", str(schemas))
    assert result.returncode == 1
    assert "field `members[].leader` removed" in result.stderr


def test_a_clone_without_release_tags_fails_with_a_clear_message(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import check_compat
    finally:
        sys.path.remove(str(ROOT / "tools"))
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "f").write_text("x")
    subprocess.run(["git", "-C", str(repo), "add", "f"], check=True)
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"],
        check=True,
    )
    with pytest.raises(check_compat.BaselineError, match=r"no release tag vX\.Y\.Z"):
        check_compat.last_release(repo)


def _commit_all(repo: Path, message: str) -> str:
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(
        [
            "git",
            "-C",
            str(repo),
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-qm",
            message,
        ],
        check=True,
    )
    head = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    )
    return head.stdout.strip()


def test_a_clone_without_tags_compares_with_the_commit_releases_names(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import check_compat
    finally:
        sys.path.remove(str(ROOT / "tools"))
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "f").write_text("released")
    released = _commit_all(repo, "release")
    (repo / "RELEASES").write_text(f"# tag commit\nv0.1.0 {released}\n")
    _commit_all(repo, "record the release")
    assert check_compat.last_release(repo) == released

    # With the tag present, the tag is used; one pointing elsewhere is refused.
    subprocess.run(["git", "-C", str(repo), "tag", "v0.1.0", released], check=True)
    assert check_compat.last_release(repo) == "v0.1.0"
    subprocess.run(["git", "-C", str(repo), "tag", "-f", "v0.1.0", "HEAD"], check=True)
    with pytest.raises(check_compat.BaselineError, match="does not point at"):
        check_compat.last_release(repo)


def test_a_malformed_releases_line_is_refused(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import check_compat
    finally:
        sys.path.remove(str(ROOT / "tools"))
    (tmp_path / "RELEASES").write_text("v0.1 abc\n")
    with pytest.raises(check_compat.BaselineError, match="RELEASES line 1"):
        check_compat.recorded_releases(tmp_path)
