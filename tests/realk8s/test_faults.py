"""Faults of a real control plane: the API server stopped and restarted in the middle of a
scale-up (with etcd compacting every 2 s, so watches resumed from before answer 410 Gone),
replicas electing a leader on a real Lease, and two installs over one namespace fenced by
real resourceVersion preconditions. These run on a control plane of their own, since they
stop its components."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sim.clusters import cluster_object
from sim.serve import free_port
from tests.helpers import until
from tests.realk8s.plane import Plane, install_identity, namespace, operator_command, running

pytestmark = pytest.mark.realk8s


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plane]:
    yield from running(tmp_path_factory.mktemp("faulty-plane"), "--compaction", "2")


class Operators:
    def __init__(self, plane: Plane, folder: Path) -> None:
        self.plane = plane
        self.folder = folder
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, ns: str, values: list[str], *extra: str, release: str = "ray-operator",
              pod: str = "ray-operator-0") -> Path:
        config, deployment = install_identity(self.plane, release=release, namespace=ns,
                                              values=values, folder=self.folder)
        command, env = operator_command(deployment, config, free_port())
        env["POD_NAME"] = pod
        log = self.folder / f"{release}-{pod}.log"
        out = log.open("wb")
        self.procs.append(subprocess.Popen([*command, "--no-ray-load", *extra], env=env,
                                           stdout=out, stderr=subprocess.STDOUT))
        return log


@pytest.fixture()
def operators(faulty: Plane, tmp_path: Path) -> Iterator[Operators]:
    found = Operators(faulty, tmp_path)
    try:
        yield found
    finally:
        for proc in found.procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(30)


def pods(plane: Plane, ns: str, cluster: str, phase: str | None = None) -> list[str]:
    out = plane.kubectl("get", "pods", "-n", ns, "-l", f"ray-cluster-name={cluster}", "-o",
                        "json").stdout
    return [p["metadata"]["name"] for p in json.loads(out)["items"]
            if not p["metadata"].get("deletionTimestamp")
            and phase in (None, p.get("status", {}).get("phase"))]


def test_the_api_server_restarts_mid_scale_up(faulty: Plane, operators: Operators) -> None:
    ns = namespace(faulty, "restart")
    log = operators.start(ns, ["--set", "operatorOnly=true", "--set", "namespacedOperator=true"])
    faulty.kubectl("apply", "-f", "-", stdin=json.dumps(cluster_object(ns, "big", 0, 30)))
    until(lambda: len(pods(faulty, ns, "big")) == 1, seconds=60)
    faulty.kubectl("patch", "raycluster", "big", "-n", ns, "--type=json", "-p", json.dumps(
        [{"op": "replace", "path": "/spec/podTypes/1/minWorkers", "value": 30}]))
    time.sleep(0.5)  # the operator is creating
    faulty.restart("kube-apiserver", pause=6.0)  # etcd compacts meanwhile
    until(lambda: len(pods(faulty, ns, "big", "Running")) == 31, seconds=120)  # the kubelet too
    time.sleep(5)
    names = pods(faulty, ns, "big")
    assert len(names) == 31 == len(set(names))  # no duplicate, none above the maximum
    text = log.read_text()
    assert "relisting after 410 Gone" in text, text  # the resumed watch was compacted away


def test_replicas_elect_a_leader_on_a_real_lease(faulty: Plane, operators: Operators) -> None:
    ns = namespace(faulty, "elect")
    values = ["--set", "operatorOnly=true", "--set", "namespacedOperator=true",
              "--set", "operator.leaderElection=true", "--set", "operator.replicas=2"]
    first = operators.start(ns, values, pod="pod-a")
    until(lambda: faulty.kubectl("get", "lease", "-n", ns, "ray-operator-ray-operator.elect"
                                 "-leader", "-o", "jsonpath={.spec.holderIdentity}",
                                 check=False).stdout == "pod-a", seconds=60)
    operators.start(ns, values, pod="pod-b")
    faulty.kubectl("apply", "-f", "-", stdin=json.dumps(cluster_object(ns, "led", 1, 2)))
    until(lambda: len(pods(faulty, ns, "led")) == 2, seconds=60)
    operators.procs[0].terminate()
    operators.procs[0].wait(30)
    until(lambda: faulty.kubectl("get", "lease", "-n", ns, "ray-operator-ray-operator.elect"
                                 "-leader", "-o", "jsonpath={.spec.holderIdentity}",
                                 check=False).stdout == "pod-b", seconds=30)
    faulty.kubectl("patch", "raycluster", "led", "-n", ns, "--type=json", "-p", json.dumps(
        [{"op": "replace", "path": "/spec/podTypes/1/minWorkers", "value": 2}]))
    until(lambda: len(pods(faulty, ns, "led")) == 3, seconds=60)
    assert "waits to lead" in first.read_text()


def test_two_installs_over_one_namespace_never_both_act(faulty: Plane,
                                                        operators: Operators) -> None:
    ns = namespace(faulty, "mix")
    namespace(faulty, "wide")
    wide = operators.start("wide", ["--set", "operatorOnly=true", "--set",
                                    "operatorNamespace=wide"], release="wide")
    faulty.kubectl("apply", "-f", "-", stdin=json.dumps(cluster_object(ns, "shared", 1, 2)))
    until(lambda: len(pods(faulty, ns, "shared")) == 2, seconds=60)
    narrow = operators.start(ns, ["--set", "operatorOnly=true", "--set",
                                  "namespacedOperator=true"], release="narrow")
    until(lambda: json.loads(faulty.kubectl("get", "raycluster", "shared", "-n", ns, "-o",
                                            "json").stdout)["status"].get("managedBy")
          == f"narrow.{ns}", seconds=90)
    faulty.kubectl("patch", "raycluster", "shared", "-n", ns, "--type=json", "-p", json.dumps(
        [{"op": "replace", "path": "/spec/podTypes/1/minWorkers", "value": 2}]))
    until(lambda: len(pods(faulty, ns, "shared")) == 3, seconds=60)
    time.sleep(5)
    assert len(pods(faulty, ns, "shared")) == 3
    assert "handing the cluster over" in wide.read_text()
    assert "Adding 1 nodes of type worker" in narrow.read_text() or \
        "Adding 1 node" in narrow.read_text()
