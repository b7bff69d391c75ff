"""The real `ray-operator` process against `python -m sim serve` over HTTP.

It lists and watches through the official client, claims the cluster, renews its lease,
creates the head and the minimum of workers the simulated kubelet then starts, reports
`STATUS Running` for kubectl, serves /metrics and /readyz, and on SIGTERM releases its lease.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s

from adapters.kube import KubeApi
from driver.execute import ApiError
from engine import claims
from sim import serve
from sim.clusters import cluster_object
from tests.helpers import free_port, logged, until

NO_RAY = ["--no-ray-load"]
"""Simulated heads run no Ray: reading their load would only look up `*.svc` names."""


@pytest.fixture()
def served(tmp_path: Path) -> Iterator[tuple[Path, KubeApi]]:
    with serve.in_thread(serve.empty_world(startup_delay=0.3, startup_jitter=0.2,
                                                     namespaces=["ray", "other", "ops"])) as port:
        config = tmp_path / "kubeconfig"
        serve.write_kubeconfig(config, port)
        yield config, KubeApi(k8s.ApiClient(k8s.Configuration(host=f"http://127.0.0.1:{port}")))


def test_the_process_brings_a_cluster_up_and_releases_its_lease(
    served: tuple[Path, KubeApi],
) -> None:
    config, api = served
    metrics = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "adapters", "--kubeconfig", str(config), "--operator-name",
         "e2e", "--metrics-port", str(metrics), *NO_RAY],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        api.create("rayclusters", "ray", cluster_object("ray", "alpha", 2, 3))

        def running() -> bool:
            """the cluster is Running with its 2 minimum workers"""
            status = api.get("rayclusters", "ray", "alpha").get("status") or {}
            return status.get("phase") == "Running" and status.get("workers", {}).get(
                "worker") == 2
        until(running)
        pods, _ = api.list("pods", "ray", "ray-cluster-name=alpha")
        assert len(pods) == 3 and all(p["status"]["phase"] == "Running" for p in pods)
        claim = claims.parse(api.get("rayclusters", "ray", "alpha"))
        assert claim is not None and claim.install == "e2e"
        assert api.get("leases", "ray", "ray-operator-e2e")["spec"]["holderIdentity"] == "e2e"
        ready = urllib.request.urlopen(f"http://127.0.0.1:{metrics}/readyz", timeout=5)
        assert ready.status == 200
        text = urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics",
                                      timeout=5).read().decode()
        assert 'ray_operator_actions_total{kind="CreatePod"} 3.0' in text
        assert 'ray_operator_clusters{phase="Running"} 1.0' in text
        for family in ("desired", "live"):
            assert (f'ray_operator_{family}_workers{{cluster="alpha",namespace="ray",'
                    f'pod_type="worker"}} 2.0') in text
        assert ('ray_operator_api_request_duration_seconds_count{code="201",resource="pods",'
                'verb="create"} 3.0') in text
        reconciles = [line for line in text.splitlines()
                      if line.startswith("ray_operator_reconciles_total ")]
        assert reconciles and float(reconciles[0].split()[1]) > 3
        if shutil.which("kubectl"):
            out = subprocess.run(["kubectl", "--kubeconfig", str(config), "get",
                                  "rayclusters", "-n", "ray"], capture_output=True, text=True,
                                 timeout=60, check=True).stdout.split()
            assert out[:8] == ["NAME", "STATUS", "RESTARTS", "AGE", "alpha", "Running", "0",
                               out[7]]
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    assert logged(output, "alpha,ray", "INFO", "claiming the cluster for e2e (epoch 1)"), output
    with pytest.raises(ApiError) as gone:
        api.get("leases", "ray", "ray-operator-e2e")
    assert gone.value.status == 404


def test_replicas_elect_one_leader_and_hand_over_on_sigterm(
    served: tuple[Path, KubeApi],
) -> None:
    config, api = served

    def replica(identity: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "adapters", "--kubeconfig", str(config), "--operator-name",
             "ha", "--metrics-port", str(free_port()), "--leader-elect", *NO_RAY],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "POD_NAME": identity, "POD_NAMESPACE": "ops"})

    first = replica("pod-a")
    try:
        def leading() -> bool:
            """pod-a holds the leader lease"""
            return bool(api.get("leases", "ops", "ray-operator-ha-leader")["spec"][
                "holderIdentity"] == "pod-a")
        until(leading)
        second = replica("pod-b")
        try:
            time.sleep(3.0)
            assert api.get("leases", "ops", "ray-operator-ha-leader")["spec"][
                "holderIdentity"] == "pod-a"
            first.send_signal(signal.SIGTERM)
            first.communicate(timeout=30)

            def handed() -> bool:
                """pod-b took the leader lease over"""
                return bool(api.get("leases", "ops", "ray-operator-ha-leader")["spec"][
                    "holderIdentity"] == "pod-b")
            until(handed, seconds=10.0)  # at once, not after a lease expiry of 15 s
            api.create("rayclusters", "ray", cluster_object("ray", "beta", 1, 1))

            def managed() -> bool:
                """the new leader manages a new cluster"""
                claim = claims.parse(api.get("rayclusters", "ray", "beta"))
                return claim is not None and claim.install == "ha"
            until(managed)
        finally:
            second.send_signal(signal.SIGTERM)
            output, _ = second.communicate(timeout=30)
        assert "pod-b waits to lead" in output and second.returncode == 0, output
    finally:
        if first.poll() is None:
            first.kill()


def test_a_cluster_the_engine_rejects_is_an_error_with_a_warning_and_others_run(
    served: tuple[Path, KubeApi],
) -> None:
    config, api = served
    bad = cluster_object("ray", "bad", 1, 3)
    bad["spec"]["headPodType"] = "gpu-head"  # valid for the CRD's schema, not for the engine
    api.create("rayclusters", "ray", bad)
    api.create("rayclusters", "ray", cluster_object("ray", "good", 1, 3))
    proc = subprocess.Popen(
        [sys.executable, "-m", "adapters", "--kubeconfig", str(config), "--operator-name",
         "e2e", "--metrics-port", str(free_port()), *NO_RAY],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        def settled() -> bool:
            """bad is in phase Error and good is Running"""
            phases = {name: (api.get("rayclusters", "ray", name).get("status") or {}).get(
                "phase") for name in ("bad", "good")}
            return phases == {"bad": "Error", "good": "Running"}
        until(settled)
        status = api.get("rayclusters", "ray", "bad")["status"]
        assert "spec.headPodType" in status["message"]
        events, _ = api.list("events", "ray")
        warnings = [e for e in events if e["type"] == "Warning"]
        assert [w["involvedObject"]["name"] for w in warnings] == ["bad"]
        assert "spec.headPodType" in warnings[0]["message"]
        pods, _ = api.list("pods", "ray", "ray-cluster-name=bad")
        assert pods == []
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output


def test_an_api_unreachable_at_start_is_retried_and_not_ready_meanwhile(
    tmp_path: Path,
) -> None:
    port, metrics = free_port(), free_port()
    config = tmp_path / "kubeconfig"
    serve.write_kubeconfig(config, port)  # nothing listens there yet
    proc = subprocess.Popen(
        [sys.executable, "-m", "adapters", "--kubeconfig", str(config), "--operator-name",
         "e2e", "--metrics-port", str(metrics), *NO_RAY],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def status(path: str) -> int:
        try:
            return int(urllib.request.urlopen(f"http://127.0.0.1:{metrics}{path}",
                                              timeout=5).status)
        except urllib.error.HTTPError as exc:
            return exc.code

    try:
        def up() -> bool:
            """the health endpoint answers"""
            return status("/healthz") == 200
        until(up)
        time.sleep(2.0)
        assert status("/readyz") == 503 and proc.poll() is None
        with serve.in_thread(serve.empty_world(startup_delay=0.3, startup_jitter=0.2,
                                                     namespaces=["ray", "other", "ops"]),
                             port=port):
            api = KubeApi(k8s.ApiClient(k8s.Configuration(host=f"http://127.0.0.1:{port}")))
            api.create("rayclusters", "ray", cluster_object("ray", "late", 0, 1))

            def ready() -> bool:
                """ready once the API answers, then the cluster runs"""
                return status("/readyz") == 200 and (api.get("rayclusters", "ray", "late").get(
                    "status") or {}).get("phase") == "Running"
            until(ready)
            proc.send_signal(signal.SIGTERM)
            output, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output
    assert "relisting after 0 Timeout" in output


def test_two_processes_of_one_install_do_not_take_the_claim_from_each_other(
    served: tuple[Path, KubeApi],
) -> None:
    """Without leader election, two processes with one --operator-name both acted and
    took the claim from each other (394 hand-overs in 35 s). The older one now stands down
    where the newer one renews the install's lease, and says so."""
    config, api = served
    api.create("rayclusters", "ray", cluster_object("ray", "alpha", 1, 2))

    def process() -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "adapters", "--kubeconfig", str(config), "--operator-name",
             "twin", "--metrics-port", str(free_port()), "--no-ray-load"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def epoch() -> int:
        claim = claims.parse(api.get("rayclusters", "ray", "alpha"))
        return claim.epoch if claim is not None else 0

    older = process()
    newer = None
    try:
        until(epoch)
        time.sleep(1.0)
        newer = process()
        time.sleep(12.0)
        start = epoch()
        time.sleep(8.0)
        assert epoch() == start  # nobody takes it from anybody any more
        status = api.get("rayclusters", "ray", "alpha")["status"]
        assert status["phase"] == "Running"
    finally:
        older.send_signal(signal.SIGTERM)
        old_output, _ = older.communicate(timeout=30)
        if newer is not None:
            newer.send_signal(signal.SIGTERM)
            new_output, _ = newer.communicate(timeout=30)
    assert "this process stands down there" in old_output, old_output
    assert "stands down" not in new_output, new_output
    assert start <= 3  # the first claim, and the newer process's once


def test_what_once_crashed_the_process_now_puts_only_its_cluster_in_error(
    served: tuple[Path, KubeApi],
) -> None:
    """Labels as a list, env as a string and a memory of 1e5000 each raised while the pod
    was built: the process died, and again at every restart, so no cluster anywhere was
    managed until someone deleted the object."""
    config, api = served

    def worker(name: str, change: Callable[[dict[str, Any]], None]) -> None:
        obj = cluster_object("ray", name, 1, 2)
        change(obj["spec"]["podTypes"][1]["podConfig"])
        api.create("rayclusters", "ray", obj)

    worker("labels", lambda c: c["metadata"].update(labels=["a", "b"]))
    worker("env", lambda c: c["spec"]["containers"][0].update(env="A=1"))
    worker("memory", lambda c: c["spec"]["containers"][0]["resources"]["limits"].update(
        memory="1e5000"))
    api.create("rayclusters", "other", cluster_object("other", "good", 1, 2))
    proc = subprocess.Popen(
        [sys.executable, "-m", "adapters", "--kubeconfig", str(config), "--operator-name",
         "e2e", "--metrics-port", str(free_port()), "--no-ray-load"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        def settled() -> bool:
            """the three are in phase Error and good is Running"""
            phases = {(ns, name): (api.get("rayclusters", ns, name).get("status") or {}).get(
                "phase") for ns, name in (("ray", "labels"), ("ray", "env"),
                                          ("ray", "memory"), ("other", "good"))}
            return list(phases.values()) == ["Error", "Error", "Error", "Running"]
        until(settled)
        messages = {name: api.get("rayclusters", "ray", name)["status"]["message"]
                    for name in ("labels", "env", "memory")}
        assert "podConfig.metadata.labels: expected an object" in messages["labels"]
        assert "containers[0].env: expected a list" in messages["env"]
        assert "limits[memory]: '1e5000'" in messages["memory"]
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
