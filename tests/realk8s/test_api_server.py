"""What a real API server enforces, met by the operator and the chart: the CRD's schema and
printer columns, the status subresource, RBAC exactly as declared, 403s outside the scope,
and the sim kubelet's part (binding, failing on request, finishing graceful deletion)."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from driver.permissions import RULES
from sim.clusters import cluster_object
from sim.serve import free_port
from tests.helpers import until
from tests.realk8s.plane import Plane, install_identity, operator_command

pytestmark = pytest.mark.realk8s
SA = "ray-operator-serviceaccount"


def apply(plane: Plane, obj: dict[str, object], *, check: bool = True
          ) -> subprocess.CompletedProcess[str]:
    """kubectl apply with client and server validation (no --validate=false)."""
    return plane.kubectl("apply", "-f", "-", stdin=json.dumps(obj), check=check)


@pytest.fixture()
def operator(plane: Plane, fresh: str, tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A namespaced operator in `fresh`, as its release renders it; (its log, its port)."""
    config, deployment = install_identity(
        plane, release="ray-operator", namespace=fresh, folder=tmp_path,
        values=["--set", "operatorOnly=true", "--set", "namespacedOperator=true"])
    port = free_port()
    command, env = operator_command(deployment, config, port)
    log = tmp_path / "operator.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([*command, "--no-ray-load"], env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        yield log, port
    finally:
        proc.terminate()
        proc.wait(30)


def test_a_raycluster_that_breaks_the_schema_is_refused_naming_the_field(
        plane: Plane, fresh: str) -> None:
    bad = cluster_object(fresh, "bad", 0, 1)
    bad["spec"]["maxWorkers"] = -1
    bad["spec"]["podTypes"][1]["minWorkers"] = "two"
    done = apply(plane, bad, check=False)
    assert done.returncode != 0
    assert "spec.maxWorkers" in done.stderr and "spec.podTypes[1].minWorkers" in done.stderr


def test_the_status_is_a_subresource_and_kubectl_prints_its_columns(
        plane: Plane, fresh: str, operator: tuple[Path, int]) -> None:
    apply(plane, cluster_object(fresh, "alpha", 1, 2))
    until(lambda: plane.kubectl("get", "rayclusters", "-n", fresh, "alpha", "--no-headers"
                                ).stdout.split()[1:3] == ["Running", "0"], seconds=60)
    header = plane.kubectl("get", "rayclusters", "-n", fresh).stdout.splitlines()[0].split()
    assert header == ["NAME", "STATUS", "RESTARTS", "AGE"]
    # A status written through the main resource is dropped: only /status writes it.
    plane.kubectl("patch", "raycluster", "alpha", "-n", fresh, "--type=merge", "-p",
                  '{"status": {"phase": "Error"}}')
    assert json.loads(plane.kubectl("get", "raycluster", "alpha", "-n", fresh, "-o", "json"
                                    ).stdout)["status"]["phase"] == "Running"


def test_the_operator_may_do_exactly_what_it_declares(plane: Plane, fresh: str,
                                                      tmp_path: Path) -> None:
    install_identity(plane, release="ray-operator", namespace=fresh, folder=tmp_path,
                     values=["--set", "operatorOnly=true", "--set", "namespacedOperator=true"])
    who = f"--as=system:serviceaccount:{fresh}:{SA}"
    for rule in RULES:
        resource, _, sub = rule.resource.partition("/")
        what = f"{resource}.{rule.group}" if rule.group else resource
        extra = [f"--subresource={sub}"] if sub else []
        for verb in rule.verbs:
            assert plane.kubectl("auth", "can-i", verb, what, *extra, "-n", fresh, who,
                                 check=False).stdout.strip() == "yes", (verb, rule.resource)
    for verb, what, *extra in (("update", "pods"), ("create", "pods", "--subresource=exec"),
                               ("delete", "services"), ("list", "secrets"), ("list", "nodes")):
        assert plane.kubectl("auth", "can-i", verb, what, *extra, "-n", fresh, who,
                             check=False).stdout.strip() == "no", (verb, what)
    assert plane.kubectl("auth", "can-i", "list", "pods", "-n", "default", who,
                         check=False).stdout.strip() == "no"  # nothing outside its namespace


def test_a_403_outside_the_scope_is_logged_once_and_retried_slowly(
        plane: Plane, fresh: str, tmp_path: Path) -> None:
    config, deployment = install_identity(
        plane, release="ray-operator", namespace=fresh, folder=tmp_path,
        values=["--set", "operatorOnly=true", "--set", "namespacedOperator=true"])
    port = free_port()
    command, env = operator_command(deployment, config, port)
    env.pop("RAY_OPERATOR_POD_NAMESPACE", None)  # misconfigured: watching a foreign namespace
    log = tmp_path / "operator.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([*command, "--no-ray-load", "--watch-namespace",
                                 f"{fresh},default"], env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        time.sleep(25)
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                         timeout=5).read().decode()
        assert proc.poll() is None  # no crash
    finally:
        proc.terminate()
        proc.wait(30)
    text = log.read_text()
    assert text.count("relisting after 403") == 1, text
    failures = [line for line in metrics.splitlines()
                if line.startswith('ray_operator_errors_total{code="403",kind="list"}')]
    assert failures and 3 <= float(failures[0].split()[1]) <= 8  # backoff: 1, 2, 5, 10 s


def test_the_kubelet_fails_a_container_on_request_and_finishes_graceful_deletes(
        plane: Plane, fresh: str) -> None:
    pod: dict[str, object] = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": fresh},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    apply(plane, pod)
    until(lambda: plane.kubectl("get", "pod", "p", "-n", fresh, "-o",
                                "jsonpath={.status.phase}").stdout == "Running")
    plane.kubectl("annotate", "pod", "p", "-n", fresh, "sim.ray.io/fail=3")
    until(lambda: plane.kubectl("get", "pod", "p", "-n", fresh, "-o", "jsonpath={.status.phase} "
                                "{.status.containerStatuses[0].state.terminated.exitCode}"
                                ).stdout == "Failed 3")
    plane.kubectl("delete", "pod", "p", "-n", fresh, "--wait=true", "--timeout=30s")
