"""The Helm workflows of docs/install.md with the real `helm` CLI against the real API server.

Each release is installed, upgraded and uninstalled by helm itself; the operator a release
deploys runs as a local process (there is no container runtime) exactly as its Deployment
says: its args, its environment and its ServiceAccount (a TokenRequest token), never admin.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from sim.serve import free_port
from tests.helpers import STAMP, until
from tests.realk8s.plane import Plane, namespace, operator_command

pytestmark = pytest.mark.realk8s


class Releases:
    """helm against the control plane, and the operator processes the releases run."""

    def __init__(self, plane: Plane, logs: Path) -> None:
        self.plane = plane
        self.logs = logs
        self.operators: list[subprocess.Popen[bytes]] = []

    def helm(self, verb: str, release: str, ns: str, *values: str) -> None:
        """`helm install|upgrade`; a new operator Deployment starts its process."""
        self.plane.helm(verb, release, "./ray", "-n", ns, "--create-namespace", *values,
                        "--wait=false")
        deployed = self.plane.kubectl("get", "deployments", "-A", "-l",
                                      f"app.kubernetes.io/instance={release}", "-o",
                                      "json").stdout
        for deployment in json.loads(deployed)["items"]:
            if verb == "install":
                self.start(deployment)

    def start(self, deployment: dict[str, Any]) -> None:
        spec = deployment["spec"]["template"]["spec"]
        ns = deployment["metadata"]["namespace"]
        account = spec["serviceAccountName"]
        config = self.plane.token_kubeconfig(ns, account, self.logs / f"{ns}-{account}.kubeconfig")
        command, env = operator_command(deployment, config, free_port())
        log = (self.logs / f"operator-{len(self.operators)}.log").open("wb")
        self.operators.append(subprocess.Popen([*command, "--no-ray-load"], env=env,
                                               stdout=log, stderr=subprocess.STDOUT))

    def log(self, index: int = 0) -> str:
        return (self.logs / f"operator-{index}.log").read_text()

    def pods(self, ns: str, cluster: str) -> int:
        out = self.plane.kubectl("get", "pods", "-n", ns, "-l", f"ray-cluster-name={cluster}",
                                 "-o", "jsonpath={range .items[*]}{.metadata.deletionTimestamp}"
                                       "|{.status.phase}{'\\n'}{end}").stdout
        return sum(1 for line in out.splitlines() if line == "|Running")

    def row(self, ns: str, name: str) -> list[str]:
        return self.plane.kubectl("get", "rayclusters", "-n", ns, name,
                                  "--no-headers").stdout.split()


@pytest.fixture()
def releases(plane: Plane, tmp_path: Path) -> Iterator[Releases]:
    found = Releases(plane, tmp_path)
    try:
        yield found
    finally:
        for proc in found.operators:
            proc.terminate()
            proc.wait(30)


def test_one_release_then_a_cluster_only_release_then_an_upgrade_and_uninstall(
        releases: Releases, plane: Plane) -> None:
    # helm -n hw install example-cluster --create-namespace ./ray --set operatorNamespace=hw
    releases.helm("install", "example-cluster", "hw", "--set", "operatorNamespace=hw")
    until(lambda: releases.pods("hw", "example-cluster") == 3, seconds=60)
    assert releases.row("hw", "example-cluster")[:3] == ["example-cluster", "Running", "0"]
    # helm -n hw install example-cluster2 ./ray --set clusterOnly=true
    #   --set podTypes.rayWorkerType.minWorkers=0
    releases.helm("install", "example-cluster2", "hw", "--set", "clusterOnly=true",
                  "--set", "podTypes.rayWorkerType.minWorkers=0")
    until(lambda: releases.pods("hw", "example-cluster2") == 1, seconds=60)
    # helm -n hw upgrade example-cluster ./ray --set podTypes.rayWorkerType.minWorkers=3
    releases.helm("upgrade", "example-cluster", "hw", "--set", "operatorNamespace=hw",
                  "--set", "podTypes.rayWorkerType.minWorkers=3")
    until(lambda: releases.pods("hw", "example-cluster") == 4, seconds=60)
    assert releases.row("hw", "example-cluster")[1:3] == ["Running", "0"]  # live, no restart
    # helm -n hw uninstall example-cluster2: the cluster goes, and with it its pods (the
    # garbage collector, by owner references: no finalizer)
    plane.helm("uninstall", "example-cluster2", "-n", "hw")
    until(lambda: releases.pods("hw", "example-cluster2") == 0 and not plane.kubectl(
        "get", "services", "-n", "hw", "example-cluster2-ray-head",
        check=False).stdout, seconds=90)
    log = releases.log()
    mine = [line for line in log.splitlines() if line.startswith("example-cluster2,hw:")]
    assert mine and all(re.match(rf"example-cluster2,hw:{STAMP} [A-Z]+ ", line)
                        for line in mine)  # `kubectl logs | grep` by prefix
    assert "Forbidden" not in log and "403" not in log, log


def test_a_namespaced_operator_needs_nothing_cluster_wide(releases: Releases,
                                                          plane: Plane) -> None:
    # helm -n team install ray-operator ./ray --set operatorOnly=true
    #   --set namespacedOperator=True
    namespace(plane, "team")
    releases.helm("install", "ray-operator", "team", "--set", "operatorOnly=true",
                  "--set", "namespacedOperator=True")
    releases.helm("install", "c", "team", "--set", "clusterOnly=true")
    until(lambda: releases.pods("team", "c") == 3, seconds=60)
    rendered = plane.helm("get", "manifest", "ray-operator", "-n", "team").stdout
    kinds = {d["kind"] for d in yaml.safe_load_all(rendered) if d}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding"}
    log = releases.log()
    assert "Forbidden" not in log and "403" not in log, log
