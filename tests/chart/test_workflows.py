"""The Helm workflows of docs/install.md, command by command, on `sim serve`: what
`helm install` and `helm upgrade` render is applied with kubectl, and the operator runs as
the rendered Deployment says (its args and environment), so the chart's scope wiring is
exercised too."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from sim import serve
from tests.chart.helm import render
from tests.helpers import free_port, logged, until
from tests.realk8s.plane import kubectl_binary

pytestmark = pytest.mark.slow


class Cluster:
    """`sim serve`, kubectl against it, and the operator processes the releases run."""

    def __init__(self, config: Path, logs: Path) -> None:
        self.config = config
        self.logs = logs
        self.operators: list[subprocess.Popen[bytes]] = []
        self.deployed: dict[tuple[str, str], Any] = {}  # what each Deployment runs

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        return subprocess.run([kubectl_binary(), "--kubeconfig", str(self.config), *args],
                              input=stdin, capture_output=True, text=True, timeout=60,
                              check=True).stdout

    def helm(self, release: str, namespace: str, values: dict[str, Any]) -> None:
        """`helm install` or `helm upgrade`: the cluster gets what the release renders."""
        docs = render(values, release=release, namespace=namespace)
        # as helm --create-namespace: the namespaces exist before what goes into them
        spaces = {namespace, *(d["metadata"].get("namespace") or namespace for d in docs)}
        self.kubectl("apply", "--validate=false", "-f", "-", stdin=yaml.safe_dump_all(
            [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
             for ns in sorted(spaces)]))
        clusters = [d for d in docs if d["kind"] == "RayCluster"]
        if clusters:
            self.kubectl("apply", "--validate=false", "-f", "-",
                         stdin=yaml.safe_dump_all(clusters))
        for deployment in (d for d in docs if d["kind"] == "Deployment"):
            key = (deployment["metadata"]["namespace"], deployment["metadata"]["name"])
            pod = deployment["spec"]["template"]
            if self.deployed.get(key) != pod:  # a changed pod template rolls out
                self.deployed[key] = pod
                self.run_operator(deployment)

    def run_operator(self, deployment: dict[str, Any]) -> None:
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        namespace = deployment["metadata"]["namespace"]
        env = dict(os.environ)
        for var in container.get("env", []):
            field = var.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
            env[var["name"]] = {"metadata.namespace": namespace,
                                "metadata.name": "ray-operator-0"}.get(field, var.get("value"))
        args = [a for a in container["args"] if not a.startswith("--metrics-port")]
        log = (self.logs / f"operator-{len(self.operators)}.log").open("wb")
        self.operators.append(subprocess.Popen(
            [sys.executable, "-m", "adapters", *args, "--kubeconfig", str(self.config),
             f"--metrics-port={free_port()}", "--no-ray-load"],  # simulated heads: no Ray
            env=env, stdout=log, stderr=subprocess.STDOUT))

    def pods(self, cluster: str) -> int:
        out = self.kubectl("get", "pods", "-A", "-l", f"ray-cluster-name={cluster}", "-o",
                           "jsonpath={range .items[*]}{.status.phase}{'\\n'}{end}")
        return sum(1 for phase in out.split() if phase == "Running")

    def row(self, namespace: str, name: str) -> list[str]:
        return self.kubectl("get", "rayclusters", "-n", namespace, name, "--no-headers").split()


@pytest.fixture()
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with serve.in_thread(serve.empty_world(startup_delay=0.3, startup_jitter=0.3)) as port:
        config = tmp_path / "kubeconfig"
        serve.write_kubeconfig(config, port)
        world = Cluster(config, tmp_path)
        try:
            yield world
        finally:
            for proc in world.operators:
                proc.terminate()
                proc.wait(30)


@pytest.mark.parametrize("scope", [{}, {"namespacedOperator": True}], ids=["cluster", "ns"])
def test_install_a_second_cluster_only_release_then_upgrade_min_workers(
    cluster: Cluster, scope: dict[str, Any],
) -> None:
    # helm -n ray install example-cluster --create-namespace ./ray
    cluster.helm("example-cluster", "ray", {**scope})
    until(lambda: cluster.pods("example-cluster") == 3)
    # helm -n ray install example-cluster2 ./ray
    #   --set podTypes.rayWorkerType.minWorkers=0 --set clusterOnly=true
    cluster.helm("example-cluster2", "ray", {"clusterOnly": True,
                                             "podTypes": {"rayWorkerType": {"minWorkers": 0}}})
    until(lambda: cluster.pods("example-cluster2") == 1)
    assert cluster.pods("example-cluster") == 3
    # helm -n ray upgrade example-cluster ./ray --set podTypes.rayWorkerType.minWorkers=3
    cluster.helm("example-cluster", "ray", {**scope,
                                            "podTypes": {"rayWorkerType": {"minWorkers": 3}}})
    until(lambda: cluster.pods("example-cluster") == 4)
    assert cluster.row("ray", "example-cluster")[1:3] == ["Running", "0"]  # no restart
    assert len(cluster.operators) == 1  # the upgrade left the operator's pod as it was
    logs = (cluster.logs / "operator-0.log").read_text()
    assert logged(logs, "example-cluster2,ray", "INFO",
                  "claiming the cluster for example-cluster."), logs
