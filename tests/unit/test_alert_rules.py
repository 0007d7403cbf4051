"""The PrometheusRule pages on metrics the services really expose, and each alert has a runbook.

promtool (`go install github.com/prometheus/prometheus/cmd/promtool@latest`) checks the rules,
runs their unit tests (alerts.test.yaml) and lints the metric names when it is installed; the
rest runs everywhere, so CI does not depend on Go.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from services.cases.deadline_gauges import DeadlineGauges
from services.runtime.telemetry import ServiceMetrics

ROOT = Path(__file__).resolve().parents[2]
OBSERVABILITY = ROOT / "deploy" / "k8s" / "components" / "observability"
RULE = OBSERVABILITY / "prometheus-rule.yaml"
RULE_TESTS = OBSERVABILITY / "alerts.test.yaml"
DASHBOARD = OBSERVABILITY / "grafana-dashboard.json"
SCHEMA = ROOT / "deploy" / "k8s" / "schemas" / "monitoring.coreos.com" / "prometheusrule_v1.json"
OPERATIONS = ROOT / "docs" / "operations.md"
# Metric names are bounded by what we register; these come from the services' own code.
OURS = re.compile(r"\bxiezuo_[a-z0-9_]+")


def _rule() -> dict[str, Any]:
    document = yaml.safe_load(RULE.read_text())
    assert isinstance(document, dict)
    return document


def _alerts() -> list[dict[str, Any]]:
    return [rule for group in _rule()["spec"]["groups"] for rule in group["rules"]]


def _exposition() -> str:
    """What a cases process exposes once every metric of ours has a series."""
    metrics = ServiceMetrics("cases")
    gauges = DeadlineGauges(database=None, registry=metrics.registry)  # type: ignore[arg-type]
    gauges.approaching.labels("cases", "c-001", "z-1", "disposition").set(1)
    gauges.breached.labels("cases", "c-001", "z-1", "disposition").set(0)
    metrics.set_outbox_pending(1)
    metrics.outbox_event_published("xiezuo.cases.case_filed.v1", "z-1")
    metrics.observe_publish(0.01)
    metrics.event_consumed("xiezuo.intake.clue_registered.v1", "z-1", "processed")
    metrics.observe_handle("xiezuo.intake.clue_registered.v1", 0.01)
    metrics.grpc_request("/xiezuo.cases.v1.CaseService/GetCase", "OK", 0.01)
    metrics.start_series(topics=["xiezuo.intake.clues"], reasons=["rejected"], probes=["lag"])
    metrics.set_consumer_lag("xiezuo-cases", "xiezuo.intake.clues", 0, 3)
    metrics.set_outbox_oldest_age(0)
    metrics.set_audit_unsealed_heads(0)
    metrics.start_wal_series()
    return generate_latest(metrics.registry).decode()


def _exposed_names() -> set[str]:
    return {
        sample.name
        for family in text_string_to_metric_families(_exposition())
        for sample in family.samples
    }


def _slug(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _promtool() -> str | None:
    found = shutil.which("promtool")
    home = Path.home() / "go" / "bin" / "promtool"
    return found or (str(home) if home.is_file() else None)


def test_the_rule_is_a_valid_prometheus_rule() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    if not SCHEMA.is_file():
        pytest.skip(f"{SCHEMA.relative_to(ROOT)} is not in this checkout")
    # Closed to unknown fields by tests/unit/test_k8s_manifests.py over the rendered overlays.
    schema = json.loads(SCHEMA.read_text())
    errors = list(jsonschema.validators.validator_for(schema)(schema).iter_errors(_rule()))
    assert not errors, errors[0].message
    assert _rule()["kind"] == "PrometheusRule"


def test_the_observability_component_ships_the_rule_and_the_dashboard() -> None:
    component = yaml.safe_load((OBSERVABILITY / "kustomization.yaml").read_text())
    assert "prometheus-rule.yaml" in component["resources"]
    [dashboard] = [
        generator
        for generator in component["configMapGenerator"]
        if "grafana-dashboard.json" in generator.get("files", [])
    ]
    # Grafana's dashboard sidecar finds ConfigMaps by this label.
    assert dashboard["options"]["labels"] == {"grafana_dashboard": "1"}


def test_the_dashboard_has_a_row_per_zone_then_the_services() -> None:
    board = json.loads(DASHBOARD.read_text())
    variables = {variable["name"] for variable in board["templating"]["list"]}
    assert {"datasource", "namespace", "service", "zone"} <= variables
    rows = [panel for panel in board["panels"] if panel["type"] == "row"]
    assert rows[0]["repeat"] == "zone" and "$zone" in rows[0]["title"]
    exposed = _exposed_names()
    current_row = None
    queried: set[str] = set()
    for panel in board["panels"]:
        if panel["type"] == "row":
            current_row = panel
            continue
        for target in panel["targets"]:
            used = set(OURS.findall(target["expr"]))
            assert used and used <= exposed, (panel["title"], used - exposed)
            queried |= used
            if current_row is rows[0]:
                assert 'zone="$zone"' in target["expr"], panel["title"]
    wanted = {
        "xiezuo_consumer_lag_records",
        "xiezuo_outbox_oldest_unpublished_age_seconds",
        "xiezuo_grpc_server_handling_seconds_bucket",
        "xiezuo_dead_letters_total",
        "xiezuo_deadlines_approaching",
        "xiezuo_deadlines_breached",
    }
    assert wanted <= queried


def test_every_alert_queries_metrics_the_services_expose() -> None:
    exposed = _exposed_names()
    for alert in _alerts():
        used = set(OURS.findall(alert["expr"]))
        assert used, alert["alert"]
        assert used <= exposed, (alert["alert"], used - exposed)


def test_every_alert_has_a_severity_a_summary_and_a_runbook_section() -> None:
    anchors = {
        _slug(line.lstrip("#"))
        for line in OPERATIONS.read_text().splitlines()
        if line.startswith("#")
    }
    names = [alert["alert"] for alert in _alerts()]
    assert len(names) == len(set(names))
    for alert in _alerts():
        assert alert["labels"]["severity"] in ("warning", "critical"), alert["alert"]
        notes = alert["annotations"]
        assert notes["summary"] and notes["description"], alert["alert"]
        page, _, anchor = notes["runbook_url"].partition("#")
        assert page == "docs/operations.md", alert["alert"]
        assert anchor == alert["alert"].lower() and anchor in anchors, alert["alert"]


def test_metric_names_follow_prometheus_conventions() -> None:
    for family in text_string_to_metric_families(_exposition()):
        name = family.name
        assert re.fullmatch(r"xiezuo_[a-z0-9_]+", name), name
        if family.type == "counter":
            # The parser strips `_total`; the exposition must have it.
            assert f"{name}_total" in {sample.name for sample in family.samples}, name
        else:
            assert not name.endswith("_total"), name
        if family.type == "histogram" or "age" in name:
            assert name.endswith("_seconds"), name  # base unit in the name


def test_promtool_checks_the_rules_and_their_unit_tests(tmp_path: Path) -> None:
    promtool = _promtool()
    if promtool is None:
        pytest.skip("promtool not installed (go install .../prometheus/cmd/promtool@latest)")
    rules = tmp_path / "xiezuo-rules.yaml"
    rules.write_text(yaml.safe_dump(_rule()["spec"], sort_keys=False))
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    for command in (["check", "rules", rules.name], ["test", "rules", RULE_TESTS.name]):
        done = subprocess.run(
            [promtool, *command], cwd=tmp_path, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_lints_the_exposed_metrics() -> None:
    promtool = _promtool()
    if promtool is None:
        pytest.skip("promtool not installed (go install .../prometheus/cmd/promtool@latest)")
    done = subprocess.run(
        [promtool, "check", "metrics"],
        input=_exposition(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
