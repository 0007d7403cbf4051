"""Regenerate gen/python/xiezuo from proto/ (or, with --check, verify it is current)."""

from __future__ import annotations

import argparse
import filecmp
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
GEN_ROOT = ROOT / "gen" / "python"
PACKAGE = "xiezuo"
INIT_TEXT = '"""Generated from proto/ by tools/gen_proto.py; do not edit."""\n'
# Only these are ours to create or delete; caches and anything else are left alone.
GENERATED_SUFFIXES = (".py", ".pyi")
MARKER_FILES = ("py.typed",)


def _plugin(name: str) -> str:
    """Path of a protoc plugin installed next to this interpreter, else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"gen_proto: {name} not found; install the dev extras (mypy-protobuf)")
    return found


def _proto_files() -> list[str]:
    """Every .proto under proto/xiezuo, relative to proto/, in a stable order."""
    return sorted(
        p.relative_to(PROTO_ROOT).as_posix() for p in (PROTO_ROOT / PACKAGE).rglob("*.proto")
    )


def generate(out_root: Path) -> None:
    """Run protoc and the mypy plugins into out_root, then add package markers."""
    protos = _proto_files()
    if not protos:
        raise SystemExit(f"gen_proto: no .proto files under {PROTO_ROOT / PACKAGE}")
    out_root.mkdir(parents=True, exist_ok=True)
    out = str(out_root)
    command = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"--proto_path={PROTO_ROOT}",
        f"--plugin=protoc-gen-mypy={_plugin('protoc-gen-mypy')}",
        f"--plugin=protoc-gen-mypy_grpc={_plugin('protoc-gen-mypy_grpc')}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        *protos,
    ]
    # Relative proto paths keep absolute checkout paths out of the generated descriptors.
    result = subprocess.run(command, cwd=PROTO_ROOT, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"gen_proto: protoc failed with exit code {result.returncode}")
    package_root = out_root / PACKAGE
    for directory in sorted({package_root, *(p.parent for p in package_root.rglob("*_pb2.py"))}):
        # protoc writes modules but no packages; every level up to xiezuo/ needs an __init__.py.
        while True:
            (directory / "__init__.py").write_text(INIT_TEXT)
            if directory == package_root:
                break
            directory = directory.parent
    (package_root / "py.typed").write_text("")


def _owned_files(package_root: Path) -> set[str]:
    """Relative paths of the files the generator owns under package_root."""
    if not package_root.exists():
        return set()
    return {
        p.relative_to(package_root).as_posix()
        for p in package_root.rglob("*")
        if p.is_file()
        and "__pycache__" not in p.parts
        and (p.suffix in GENERATED_SUFFIXES or p.name in MARKER_FILES)
    }


def diff(fresh_root: Path, current_root: Path) -> tuple[list[str], list[str], list[str]]:
    """(missing, stale, extra) relative paths of current_root compared with fresh_root."""
    fresh = _owned_files(fresh_root)
    current = _owned_files(current_root)
    missing = sorted(fresh - current)
    extra = sorted(current - fresh)
    stale = sorted(
        rel
        for rel in fresh & current
        if not filecmp.cmp(fresh_root / rel, current_root / rel, shallow=False)
    )
    return missing, stale, extra


def sync(fresh_root: Path, current_root: Path) -> list[str]:
    """Make current_root's owned files equal to fresh_root's; returns what changed."""
    missing, stale, extra = diff(fresh_root, current_root)
    for rel in missing + stale:
        target = current_root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(fresh_root / rel, target)
    for rel in extra:
        (current_root / rel).unlink()
    # Remove package directories left empty by deleted protos (ignoring bytecode caches).
    for directory in sorted((p for p in current_root.rglob("*") if p.is_dir()), reverse=True):
        if directory.name != "__pycache__" and not any(
            child.name != "__pycache__" for child in directory.iterdir()
        ):
            shutil.rmtree(directory)
    return [f"+ {r}" for r in missing] + [f"~ {r}" for r in stale] + [f"- {r}" for r in extra]


def main(argv: list[str] | None = None) -> int:
    """Entry point: regenerate, or with --check report drift and exit 1."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--check",
        action="store_true",
        help="verify gen/python/xiezuo matches proto/ without writing; exit 1 if not",
    )
    args = parser.parse_args(argv)
    current_root = GEN_ROOT / PACKAGE
    with tempfile.TemporaryDirectory(prefix="gen_proto-") as tmp:
        generate(Path(tmp))
        fresh_root = Path(tmp) / PACKAGE
        if args.check:
            missing, stale, extra = diff(fresh_root, current_root)
            if not (missing or stale or extra):
                print("gen_proto: gen/python/xiezuo is up to date")
                return 0
            print("gen_proto: gen/python/xiezuo is out of date with proto/:", file=sys.stderr)
            for label, paths in (("missing", missing), ("stale", stale), ("not generated", extra)):
                for rel in paths:
                    print(f"  {label}: gen/python/{PACKAGE}/{rel}", file=sys.stderr)
            print("run: .venv/bin/python tools/gen_proto.py", file=sys.stderr)
            return 1
        changes = sync(fresh_root, current_root)
    for line in changes:
        print(line)
    print(f"gen_proto: {len(changes)} file(s) changed under gen/python/{PACKAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
