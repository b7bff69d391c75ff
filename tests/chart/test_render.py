"""The chart renders the legacy matrix, lints clean, and every object it renders is valid."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from helm_python import chart as hc

from engine.spec import from_raycluster
from tests.chart.helm import CHART, crd, crd_schema, kinds, render

ROOT = CHART.parent.parent
OPERATOR_CLUSTER = ["ClusterRole", "ClusterRoleBinding", "Deployment", "ServiceAccount"]
OPERATOR_NAMESPACED = ["Deployment", "Role", "RoleBinding", "ServiceAccount"]


def expected(operator_only: bool, cluster_only: bool, namespaced: bool) -> list[str]:
    """The legacy render matrix (reference §2), the CRD aside (Helm installs it from crds/)."""
    out: list[str] = []
    if not cluster_only:
        out += OPERATOR_NAMESPACED if namespaced else OPERATOR_CLUSTER
    if not operator_only:
        out.append("RayCluster")
    return sorted(out)


@pytest.mark.parametrize("flags", list(itertools.product([False, True], repeat=3)))
def test_every_flag_combination_renders_the_legacy_matrix(
    flags: tuple[bool, bool, bool],
) -> None:
    operator_only, cluster_only, namespaced = flags
    docs = render({"operatorOnly": operator_only, "clusterOnly": cluster_only,
                   "namespacedOperator": namespaced, "operatorNamespace": "ops",
                   "operator": {"metrics": {"service": False}}})
    assert kinds(docs) == expected(operator_only, cluster_only, namespaced)
    for doc in docs:
        ns = doc["metadata"].get("namespace")
        if doc["kind"] in ("ClusterRole", "ClusterRoleBinding"):
            assert ns is None
        elif doc["kind"] == "RayCluster" or namespaced:
            assert ns == "ray"
        else:
            assert ns == "ops"  # the cluster-scoped operator lives in operatorNamespace


def test_the_crd_names_status_and_printer_columns() -> None:
    spec = crd()["spec"]
    assert crd()["metadata"]["name"] == "rayclusters.cluster.ray.io"
    assert (spec["group"], spec["scope"], spec["names"]["kind"]) == (
        "cluster.ray.io", "Namespaced", "RayCluster")
    version = spec["versions"][0]
    assert version["subresources"] == {"status": {}}
    columns = [(c["name"], c["jsonPath"]) for c in version["additionalPrinterColumns"]]
    assert columns[:3] == [("Status", ".status.phase"), ("Restarts", ".status.autoscalerRetries"),
                           ("Age", ".metadata.creationTimestamp")]


def test_lint_strict_is_clean() -> None:
    result = hc.lint(str(CHART), {}, strict=True)
    assert result["errors"] == [] and result["messages"] == []


@pytest.mark.parametrize("values", [
    {}, {"namespacedOperator": True}, {"watchNamespaces": ["a", "b"]},
    {"operator": {"replicas": 2, "leaderElection": True, "metrics": {"serviceMonitor": True}}},
    {"podTypes": {"rayHeadType": {"CPU": 2, "memory": "2Gi", "GPU": 1,
                                  "nodeSelector": {"pool": "head"},
                                  "tolerations": [{"key": "k", "operator": "Exists"}]},
                  "rayWorkerType": {"minWorkers": 0, "maxWorkers": 9, "CPU": 1, "memory": "1Gi",
                                    "rayResources": {"custom": 1}, "image": "my/ray:1"}},
     "imagePullSecrets": [{"name": "regcred"}]},
])
def test_rendered_objects_are_valid_kubernetes(values: dict[str, Any]) -> None:
    validator = jsonschema.Draft4Validator(crd_schema())  # OpenAPI v3.0 is draft 4's dialect
    for doc in render(values):
        if doc["kind"] == "RayCluster":
            errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(doc)]
            assert errors == []
            from_raycluster(doc)  # and the engine accepts it
        elif doc["kind"] != "ServiceMonitor":  # the Prometheus operator's CRD: no schema here
            kubernetes_validate.validate(doc, "1.35.0", strict=True)


def test_the_simulators_example_clusters_satisfy_the_crd() -> None:
    validator = jsonschema.Draft4Validator(crd_schema())
    clusters = sorted((ROOT / "sim" / "scenarios" / "clusters").glob("*.yaml"))
    assert clusters
    for path in clusters:
        for doc in yaml.safe_load_all(path.read_text()):
            errors = [f"{path.name} {list(e.path)}: {e.message}"
                      for e in validator.iter_errors(doc)]
            assert errors == []


@pytest.mark.parametrize(("values", "named"), [
    ({"podTypes": {"rayWorkerType": {"minWorkers": "lots"}}},
     "/podTypes/rayWorkerType/minWorkers"),
    ({"podTypes": {"rayWorkerType": {"minWorkers": 5}}}, "podTypes.rayWorkerType.minWorkers"),
    ({"podTypes": {"rayWorkerType": {"minworkers": 1}}}, "minworkers"),
    ({"bogus": 1}, "bogus"),
    ({"upscalingSpeed": 0}, "/upscalingSpeed"),
    ({"headPodType": "nope"}, "headPodType"),
    ({"operator": {"replicas": 2}}, "operator.replicas"),
    ({"watchNamespaces": ["Not_A_Namespace"]}, "/watchNamespaces/0"),
])
def test_bad_values_are_rejected_naming_the_key(values: dict[str, Any], named: str) -> None:
    with pytest.raises(Exception) as info:
        render(values)
    assert named in str(info.value)


def test_the_plain_manifests_are_generated_from_the_chart() -> None:
    check = subprocess.run([sys.executable, str(ROOT / "scripts" / "generate-manifests"),
                            "--check"], capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    for path in sorted((ROOT / "deploy").glob("*.yaml")):
        for doc in yaml.safe_load_all(Path(path).read_text()):
            if doc["kind"] not in ("RayCluster", "CustomResourceDefinition"):
                kubernetes_validate.validate(doc, "1.35.0", strict=True)
