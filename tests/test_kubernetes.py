"""deploy/kubernetes: valid against the Kubernetes schemas (offline, kubernetes-validate), consistent
with each other and with the exporter, and a PrometheusRule promtool accepts."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from fastapi.testclient import TestClient

from app.config import ENV_PREFIX, Settings, load_settings
from app.main import create_app
from mixin import rules
from tests.processes import PROMTOOL

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = ROOT / "deploy" / "kubernetes"
# The oldest Kubernetes the manifests are meant for, and the newest kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.27.0", kubernetes_validate.latest_version())
OPERATOR_GROUP = "monitoring.coreos.com/v1"


def _objects() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted(MANIFESTS.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if document is not None and document.get("kind") != "Kustomization":
                yield path.name, document


OBJECTS = list(_objects())


def _one(kind: str, file: str | None = None) -> dict[str, Any]:
    (found,) = [obj for name, obj in OBJECTS if obj["kind"] == kind and file in (None, name)]
    return found


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize(
    ("file", "manifest"),
    [
        pytest.param(name, obj, id=f"{name}:{obj['kind']}")
        for name, obj in OBJECTS
        if obj["apiVersion"] != OPERATOR_GROUP
    ],
)
def test_core_objects_are_valid_against_the_kubernetes_schema(
    file: str, manifest: dict[str, Any], version: str
) -> None:
    kubernetes_validate.validate(manifest, version, strict=True)


def test_kustomization_lists_every_manifest_but_the_alternatives() -> None:
    kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text(encoding="utf-8"))
    listed = set(kustomization["resources"])
    assert listed == {path.name for path in MANIFESTS.glob("*.yaml")} - {
        "kustomization.yaml",
        "podmonitor.yaml",
        "secret.example.yaml",
    }


# --- The prometheus-operator objects (no schema ships with kubernetes-validate) ------------------


def test_promtool_accepts_the_prometheus_rule_spec(tmp_path: Path) -> None:
    spec = tmp_path / "spec.rules.yml"
    spec.write_text(yaml.safe_dump(_one("PrometheusRule")["spec"]), encoding="utf-8")
    result = subprocess.run(
        [PROMTOOL, "check", "rules", str(spec)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("kind", ["ServiceMonitor", "PodMonitor", "PrometheusRule"])
def test_operator_objects_have_the_operator_shape(kind: str) -> None:
    manifest = _one(kind)
    assert manifest["apiVersion"] == OPERATOR_GROUP
    assert set(manifest) == {"apiVersion", "kind", "metadata", "spec"}
    assert manifest["metadata"]["name"] == "llmopt-exporter"
    allowed = {
        "ServiceMonitor": {"selector", "endpoints", "jobLabel", "namespaceSelector"},
        "PodMonitor": {"selector", "podMetricsEndpoints", "jobLabel", "namespaceSelector"},
        "PrometheusRule": {"groups"},
    }[kind]
    assert set(manifest["spec"]) <= allowed


# --- Consistency -----------------------------------------------------------------------------------


def _pod() -> dict[str, Any]:
    return dict(_one("Deployment")["spec"]["template"])


def _container() -> dict[str, Any]:
    (container,) = _pod()["spec"]["containers"]
    return dict(container)


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return selector.items() <= labels.items()


def test_selectors_find_the_exporter_pods() -> None:
    pod_labels = _pod()["metadata"]["labels"]
    deployment = _one("Deployment")
    service = _one("Service")
    assert _matches(deployment["spec"]["selector"]["matchLabels"], pod_labels)
    assert _matches(service["spec"]["selector"], pod_labels)
    assert _matches(_one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"], pod_labels)
    assert _matches(_one("ServiceMonitor")["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    assert _matches(_one("PodMonitor")["spec"]["selector"]["matchLabels"], pod_labels)
    container_ports = {port["name"] for port in _container()["ports"]}
    service_ports = {port["name"] for port in service["spec"]["ports"]}
    assert {port["targetPort"] for port in service["spec"]["ports"]} <= container_ports
    assert {endpoint["port"] for endpoint in _one("ServiceMonitor")["spec"]["endpoints"]} <= service_ports
    assert {e["port"] for e in _one("PodMonitor")["spec"]["podMetricsEndpoints"]} <= container_ports


def test_service_is_headless_so_clients_reach_each_replica() -> None:
    assert _one("Service")["spec"]["clusterIP"] == "None"


def test_the_scrape_job_is_the_one_the_rules_watch() -> None:
    job = rules.load_config(ROOT / "alerts" / "config.yml").exporter_job
    # ServiceMonitor: the job label is the Service's name. PodMonitor: the pod label jobLabel names.
    assert _one("Service")["metadata"]["name"] == job
    assert _pod()["metadata"]["labels"][_one("PodMonitor")["spec"]["jobLabel"]] == job


def test_probes_and_scrapes_use_the_exporters_paths() -> None:
    container = _container()
    probes = [container[probe]["httpGet"] for probe in ("startupProbe", "readinessProbe", "livenessProbe")]
    assert {probe["port"] for probe in probes} == {port["name"] for port in container["ports"]}
    scrapes = [endpoint["path"] for endpoint in _one("ServiceMonitor")["spec"]["endpoints"]]
    with TestClient(create_app(Settings())) as client:
        for path in [*(probe["path"] for probe in probes), *scrapes]:
            assert client.get(path).status_code == 200, path


def test_the_environment_starts_the_exporter_on_every_address(monkeypatch: pytest.MonkeyPatch) -> None:
    """The image listens on 0.0.0.0 (Dockerfile), where ingest tokens are required: the manifest
    sets them from the Secret, and every LLMOPT_ variable it sets is a setting."""
    container = _container()
    env = {item["name"]: item for item in container["env"]}
    assert {name.removeprefix(ENV_PREFIX).lower() for name in env} <= set(Settings.model_fields)
    reference = env["LLMOPT_INGEST_TOKENS"]["valueFrom"]["secretKeyRef"]
    secret = _one("Secret", "secret.example.yaml")
    assert reference["name"] == secret["metadata"]["name"] and reference["key"] in secret["stringData"]
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "LLMOPT_HOST=0.0.0.0" in dockerfile
    port = int(re.search(r"LLMOPT_PORT=(\d+)", dockerfile).group(1))  # type: ignore[union-attr]
    assert [p["containerPort"] for p in container["ports"]] == [port]
    for name, item in env.items():
        monkeypatch.setenv(name, item.get("value", secret["stringData"]["tokens"]))
    settings = load_settings(host="0.0.0.0", port=port)
    assert settings.ingest_token_values() == [secret["stringData"]["tokens"]]


def test_the_snapshot_is_written_to_a_volume_of_the_pod() -> None:
    container = _container()
    snapshot = Path(
        next(item["value"] for item in container["env"] if item["name"] == "LLMOPT_SNAPSHOT_FILE")
    )
    mounts = {Path(mount["mountPath"]): mount["name"] for mount in container["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in _pod()["spec"]["volumes"]}
    assert "emptyDir" in volumes[mounts[snapshot.parent]]


def test_the_pod_runs_unprivileged_on_a_read_only_root() -> None:
    pod, container = _pod()["spec"], _container()
    user = re.search(r"^USER (\d+):(\d+)$", (ROOT / "Dockerfile").read_text(encoding="utf-8"), re.MULTILINE)
    assert user is not None
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (
        int(user.group(1)),
        int(user.group(2)),
    )
    assert pod["automountServiceAccountToken"] is False
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert "memory" in container["resources"]["limits"]
