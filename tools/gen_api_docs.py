"""Write docs/api/<service>.md from proto/ (or, with --check, verify they are current)."""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from google.protobuf import descriptor_pb2

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
OUTPUT = ROOT / "docs" / "api"
PACKAGE = "xiezuo"
HEADER = "<!-- Generated from proto/ by tools/gen_api_docs.py; do not edit. -->\n"

# SourceCodeInfo paths: field numbers of FileDescriptorProto, DescriptorProto, ...
FILE_MESSAGE, FILE_ENUM, FILE_SERVICE = 4, 5, 6
MESSAGE_FIELD, MESSAGE_NESTED, MESSAGE_ENUM = 2, 3, 4
SERVICE_METHOD, ENUM_VALUE = 2, 2

Comments = dict[tuple[int, ...], str]
FieldProto = descriptor_pb2.FieldDescriptorProto
SCALARS = {
    value: name.removeprefix("TYPE_").lower()
    for name, value in FieldProto.Type.items()
    if name not in ("TYPE_MESSAGE", "TYPE_ENUM", "TYPE_GROUP")
}


def descriptor_set(protos: Sequence[str]) -> descriptor_pb2.FileDescriptorSet:
    """Every proto compiled by protoc, with its comments (source info)."""
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "set.pb"
        command = [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"--proto_path={PROTO_ROOT}",
            f"--descriptor_set_out={out}",
            "--include_source_info",
            *protos,
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"gen_api_docs: protoc failed:\n{done.stderr}")
        return descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())


def comments_of(file: descriptor_pb2.FileDescriptorProto) -> Comments:
    """Leading comment of every element, by source path, folded onto one line."""
    return {
        tuple(location.path): " ".join(location.leading_comments.split())
        for location in file.source_code_info.location
        if location.leading_comments.strip()
    }


def cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|") or " "


def type_link(type_name: str, package: str) -> str:
    """A message or enum type: linked when it is this package's, else its full name."""
    name = type_name.lstrip(".")
    if name.startswith(f"{package}."):
        short = name.removeprefix(f"{package}.")
        return f"[`{short}`](#{anchor(short)})"
    return f"`{name}`"


def anchor(short_name: str) -> str:
    """The explicit anchor every message and enum heading carries."""
    return short_name.lower().replace(".", "-")


class Renderer:
    """Markdown for one service package, element by element."""

    def __init__(self, package: str) -> None:
        self.package = package
        self.map_entries: dict[str, descriptor_pb2.DescriptorProto] = {}

    def field_type(self, field: FieldProto) -> str:
        """How a field's type reads in the reference."""
        if field.type in (FieldProto.TYPE_MESSAGE, FieldProto.TYPE_ENUM):
            entry = self.map_entries.get(field.type_name.lstrip("."))
            if entry is not None:
                key, value = entry.field
                return f"map<{self.field_type(key)}, {self.field_type(value)}>"
            base = type_link(field.type_name, self.package)
        else:
            base = f"`{SCALARS[field.type]}`"
        if field.label == FieldProto.LABEL_REPEATED:
            return f"repeated {base}"
        return base

    def collect_maps(self, prefix: str, message: descriptor_pb2.DescriptorProto) -> None:
        """Remember map entry types so fields using them read as map<K, V>."""
        for nested in message.nested_type:
            full = f"{prefix}.{message.name}.{nested.name}"
            if nested.options.map_entry:
                self.map_entries[full] = nested
            self.collect_maps(f"{prefix}.{message.name}", nested)

    def service(
        self, service: descriptor_pb2.ServiceDescriptorProto, path: tuple[int, ...], c: Comments
    ) -> Iterator[str]:
        """A service and its RPCs."""
        yield f"## {service.name}\n"
        if c.get(path):
            yield f"{c[path]}\n"
        yield "| RPC | Request | Response | Description |"
        yield "|---|---|---|---|"
        for index, method in enumerate(service.method):
            yield (
                f"| `{method.name}` | {type_link(method.input_type, self.package)} "
                f"| {type_link(method.output_type, self.package)} "
                f"| {cell(c.get((*path, SERVICE_METHOD, index), ''))} |"
            )
        yield ""

    def message(
        self,
        message: descriptor_pb2.DescriptorProto,
        path: tuple[int, ...],
        c: Comments,
        parent: str = "",
    ) -> Iterator[str]:
        """A message, its fields, then its nested messages and enums."""
        if message.options.map_entry:
            return
        short = f"{parent}{message.name}"
        yield f'### <a id="{anchor(short)}"></a>{short}\n'
        if c.get(path):
            yield f"{c[path]}\n"
        if message.field:
            yield "| Field | Type | Description |"
            yield "|---|---|---|"
            for index, field in enumerate(message.field):
                description = c.get((*path, MESSAGE_FIELD, index), "")
                if field.HasField("oneof_index") and not field.proto3_optional:
                    oneof = message.oneof_decl[field.oneof_index].name
                    description = f"(one of `{oneof}`) {description}"
                yield f"| `{field.name}` | {self.field_type(field)} | {cell(description)} |"
            yield ""
        else:
            yield "No fields.\n"
        for index, nested in enumerate(message.nested_type):
            yield from self.message(nested, (*path, MESSAGE_NESTED, index), c, f"{short}.")
        for index, enum in enumerate(message.enum_type):
            yield from self.enum(enum, (*path, MESSAGE_ENUM, index), c, f"{short}.")

    def enum(
        self,
        enum: descriptor_pb2.EnumDescriptorProto,
        path: tuple[int, ...],
        c: Comments,
        parent: str = "",
    ) -> Iterator[str]:
        """An enum and its values."""
        short = f"{parent}{enum.name}"
        yield f'### <a id="{anchor(short)}"></a>{short}\n'
        if c.get(path):
            yield f"{c[path]}\n"
        yield "| Value | Number | Description |"
        yield "|---|---|---|"
        for index, value in enumerate(enum.value):
            description = c.get((*path, ENUM_VALUE, index), "")
            yield f"| `{value.name}` | {value.number} | {cell(description)} |"
        yield ""


def render_package(package: str, files: list[descriptor_pb2.FileDescriptorProto]) -> str:
    """The reference page of one package (all of a service's .proto files)."""
    renderer = Renderer(package)
    for file in files:
        for message in file.message_type:
            renderer.collect_maps(f"{package}", message)
    service_name = package.split(".")[1]
    lines = [
        HEADER,
        f"# {service_name} gRPC API (`{package}`)\n",
        "Sources: " + ", ".join(f"`proto/{file.name}`" for file in files) + ".\n",
        "Every call needs `authorization: Bearer <token>` metadata (see "
        "[getting started](../getting-started.md)); errors carry `google.rpc` details.\n",
    ]
    per_file = [(file, comments_of(file)) for file in files]
    for file, comments in per_file:
        for index, service in enumerate(file.service):
            lines.extend(renderer.service(service, (FILE_SERVICE, index), comments))
    lines.append("## Messages\n")
    for file, comments in per_file:
        for index, message in enumerate(file.message_type):
            lines.extend(renderer.message(message, (FILE_MESSAGE, index), comments))
    lines.append("## Enums\n")
    for file, comments in per_file:
        for index, enum in enumerate(file.enum_type):
            lines.extend(renderer.enum(enum, (FILE_ENUM, index), comments))
    return "\n".join(lines).rstrip() + "\n"


def render_index(packages: list[str]) -> str:
    """docs/api/README.md: one line per service."""
    lines = [HEADER, "# gRPC API reference\n"]
    lines.append(
        "One page per service, generated from `proto/` by `tools/gen_api_docs.py` "
        "(`make check` fails when a page is stale).\n"
    )
    for package in packages:
        service = package.split(".")[1]
        lines.append(f"- [{service}]({service}.md) — `{package}`")
    return "\n".join(lines) + "\n"


def render_all() -> dict[str, str]:
    """Every page to write, by file name under docs/api/."""
    protos = sorted(
        p.relative_to(PROTO_ROOT).as_posix() for p in (PROTO_ROOT / PACKAGE).rglob("*.proto")
    )
    by_package: dict[str, list[descriptor_pb2.FileDescriptorProto]] = {}
    for file in descriptor_set(protos).file:
        by_package.setdefault(file.package, []).append(file)
    pages = {
        f"{package.split('.')[1]}.md": render_package(package, files)
        for package, files in sorted(by_package.items())
    }
    pages["README.md"] = render_index(sorted(by_package))
    return pages


def main() -> int:
    """Write the pages, or with --check exit 1 if a checked-in one is stale or missing."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    pages = render_all()
    if args.check:
        stale = [
            name
            for name, text in pages.items()
            if not (OUTPUT / name).exists() or (OUTPUT / name).read_text() != text
        ]
        extra = sorted(path.name for path in OUTPUT.glob("*.md") if path.name not in pages)
        if stale or extra:
            print(
                "gen_api_docs: docs/api is stale "
                f"({', '.join(stale + extra)}); run `python tools/gen_api_docs.py`",
                file=sys.stderr,
            )
            return 1
        print("gen_api_docs: docs/api is up to date")
        return 0
    OUTPUT.mkdir(parents=True, exist_ok=True)
    for name, text in pages.items():
        (OUTPUT / name).write_text(text)
    print(f"gen_api_docs: wrote {len(pages)} pages under {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
