"""The legacy Ray operator's end-to-end test A (test_k8s_operator_basic.py) with the real
`ray-operator` process and kubectl against `python -m sim serve`: a namespaced operator and
two clusters; the operator is killed and a new one adopts every pod; a head is lost and the
cluster recovers (RESTARTS 1); a cluster is deleted with its Service; `minWorkers` grows
live; everything is deleted.

The same test runs against a real cluster when `RAY_OPERATOR_E2E_KUBECONFIG` names its
kubeconfig (docs/install.md, "End-to-end tests on a real cluster"): it applies the chart's CRD and
creates the test namespace first, then runs the operator process on this machine against that
API server exactly as against `sim serve`. Without it, that run is skipped with the reason.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from sim import cli, serve
from tests.helpers import free_port, until
from tests.realk8s.plane import install_identity, kubectl_binary, namespace

NS = "test-k8s-operator"
CLUSTERS = Path(cli.__file__).parent / "scenarios" / "clusters"


class Kubectl:
    def __init__(self, config: Path, binary: str = "kubectl",
                 operator_config: Path | None = None) -> None:
        self.config = config
        self.binary = binary
        self.operator_config = operator_config or config  # whom the operator runs as
        self.ray_load = False  # whether the heads run Ray (only on a cluster of yours)

    def __call__(self, *args: str) -> str:
        return subprocess.run([self.binary, "--kubeconfig", str(self.config), *args],
                              capture_output=True, text=True, timeout=60, check=True).stdout

    def pods(self) -> int:
        out = self("get", "pods", "-n", NS, "-l", "ray-cluster-name",
                   "-o", "jsonpath={range .items[*]}{.metadata.deletionTimestamp}|"
                         "{.status.phase}{'\\n'}{end}")
        return sum(1 for line in out.splitlines()
                   if line.startswith("|") and line[1:] in ("Running", "Pending"))

    def services(self) -> int:
        return len(self("get", "services", "-n", NS, "-o", "name").split())

    def cluster(self, name: str) -> list[str]:
        """NAME STATUS RESTARTS AGE of one RayCluster, as kubectl prints it"""
        return self("get", "rayclusters", "-n", NS, name, "--no-headers").split()


class Operator:
    """A `ray-operator` process scoped to the test namespace, its output kept."""

    def __init__(self, config: Path, log: Path, *, ray_load: bool) -> None:
        self.out = log.open("w")
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "adapters", "--kubeconfig", str(config), "--namespace", NS,
             "--operator-name", "ray-operator", "--metrics-port", str(self.port),
             *([] if ray_load else ["--no-ray-load"])],
            stdout=self.out, stderr=subprocess.STDOUT, text=True)

    def ready(self) -> bool:
        """the operator has listed everything (/readyz)"""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=5) as r:
            return bool(r.status == 200)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        self.out.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)
        self.out.close()


REAL = "RAY_OPERATOR_E2E_KUBECONFIG"
CRD = Path(__file__).parent.parent.parent / "chart" / "ray" / "crds" / "cluster_crd.yaml"


@pytest.fixture(params=["sim", pytest.param("control-plane", marks=pytest.mark.realk8s),
                        "real"])
def kubectl(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Kubectl]:
    """kubectl against `sim serve`, against the real control plane (the operator runs as
    the ServiceAccount a namespaced release gives it), or against a cluster of yours."""
    if request.param == "control-plane":
        plane = request.getfixturevalue("plane")
        namespace(plane, NS)
        config, _ = install_identity(plane, release="ray-operator", namespace=NS,
                                     values=["--set", "operatorOnly=true",
                                             "--set", "namespacedOperator=true"],
                                     folder=tmp_path)
        yield Kubectl(plane.kubeconfig, str(plane.bins / "kubectl"), config)
        plane.kubectl("delete", "namespace", NS, "--wait=false", check=False)
        return
    if request.param == "real":
        config = os.environ.get(REAL)
        if not config:
            pytest.skip(f"{REAL} is not set: no real cluster to run against")
        real = Kubectl(Path(config))
        real.ray_load = True
        real("apply", "-f", str(CRD))
        subprocess.run(["kubectl", "--kubeconfig", config, "create", "namespace", NS],
                       capture_output=True, timeout=60, check=False)  # may exist already
        yield real
        return
    with serve.in_thread(serve.empty_world(startup_delay=0.5, startup_jitter=0.5,
                                                     namespaces=[NS])) as port:
        config_path = tmp_path / "kubeconfig"
        serve.write_kubeconfig(config_path, port)
        yield Kubectl(config_path, kubectl_binary())


def test_legacy_e2e_a(kubectl: Kubectl, tmp_path: Path) -> None:
    first = Operator(kubectl.operator_config, tmp_path / "operator-1.log",
                     ray_load=kubectl.ray_load)
    try:
        for name in ("test-a-cluster.yaml", "test-a-cluster2.yaml"):
            kubectl("apply", "--validate=false", "-f", str(CLUSTERS / name))
        until(lambda: kubectl.pods() == 5 and kubectl.services() == 2)
        until(lambda: kubectl.cluster("example-cluster")[1:3] == ["Running", "0"])
        lines = [line for line in (tmp_path / "operator-1.log").read_text().splitlines()
                 if line.startswith(f"example-cluster,{NS}:")]
        assert any("rayHeadType" in line for line in lines), lines
        assert any("rayWorkerType" in line for line in lines), lines
    finally:
        first.kill()  # killed, not stopped: its leases stay until they expire
    assert kubectl.pods() == 5
    second = Operator(kubectl.operator_config, tmp_path / "operator-2.log",
                      ray_load=kubectl.ray_load)
    try:
        until(second.ready)
        time.sleep(1.0)  # its first lease renewal, then a plan of every cluster
        assert kubectl.pods() == 5  # adopted, nothing created twice
        assert "Adding" not in (tmp_path / "operator-2.log").read_text()
        head = kubectl("get", "pods", "-n", NS, "-l",
                       "ray-cluster-name=example-cluster,ray-node-type=head", "-o", "name")
        kubectl("delete", "-n", NS, head.strip(), "--wait=false")
        until(lambda: kubectl.cluster("example-cluster")[1:3] == [
            "AutoscalingExceptionRecovery", "1"])
        until(lambda: kubectl.cluster("example-cluster")[1:3] == ["Running", "1"],
              seconds=60)
        until(lambda: kubectl.pods() == 5)
        kubectl("delete", "raycluster", "-n", NS, "example-cluster2")
        until(lambda: kubectl.pods() == 3 and kubectl.services() == 1)
        kubectl("apply", "--validate=false", "-f", str(CLUSTERS / "test-a-cluster-min3.yaml"))
        until(lambda: kubectl.pods() == 4)
        assert kubectl.cluster("example-cluster")[1:3] == ["Running", "1"]  # no restart
        kubectl("delete", "raycluster", "-n", NS, "example-cluster")
        until(lambda: kubectl.pods() == 0 and kubectl.services() == 0)
        created = (tmp_path / "operator-2.log").read_text().count("Adding")
        assert created >= 2  # the new head after the loss, the third worker
    finally:
        second.stop()
