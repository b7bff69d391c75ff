"""B7: one workload through a real kube-apiserver and through `sim serve`, side by side.

The simulated API is what every other benchmark and most tests run on; this one says what
it hides. The workload is the same on both: `clusters` RayClusters in ten namespaces, their
heads Running, then every cluster's `minWorkers` raised from 0 to `workers` and, once all are
Running, lowered back to 0 (with `maxWorkers`: the operator reads no Ray load here, so no
worker is ever idle). The operator is the real `ray-operator` process (admin
credentials, an API budget high enough not to be the limit: the figures are the API's), and
what a kubelet does is done by `python -m sim kubelet` for the real control plane and by the
simulator's own kubelet inside `sim serve`.

Reported for each backend: worker pods created and deleted per second through the API (from
the first patch until the operator sees every pod Running, and until the API lists no worker
pod), the operator's API requests per pod, its peak RSS and CPU seconds, and the peak RSS
and CPU seconds of the API side (etcd, kube-apiserver and kube-controller-manager; the sim
kubelet separately; or the one `sim serve` process). The real control plane comes from
`scripts/control-plane` (built by `scripts/control-plane build`); where it is not built B7
says so instead of a figure.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from kubernetes import client as k8s

from adapters.kube import KubeApi
from bench.process import Operator, admin, scrape, sim_serve, total, until
from driver.execute import ApiError
from sim.clusters import cluster_object

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "control-plane"
CRD = ROOT / "chart" / "ray" / "crds" / "cluster_crd.yaml"
NAMESPACES = 10
TICKS = os.sysconf("SC_CLK_TCK")
WORKERS = "ray-node-type=worker"


@dataclass(frozen=True)
class Backend:
    """A running Kubernetes API: its kubeconfig and the processes that serve it."""

    name: str
    kubeconfig: Path
    server_pids: list[int]
    kubelet_pids: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Usage:
    cpu_seconds: float
    peak_rss_bytes: int


def usage(pids: list[int]) -> Usage:
    """CPU seconds so far and peak RSS (VmHWM), summed over `pids`."""
    cpu, peak = 0.0, 0
    for pid in pids:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        cpu += (int(stat[11]) + int(stat[12])) / TICKS  # utime, stime
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peak += int(line.split()[1]) * 1024
    return Usage(cpu, peak)


def control_plane_missing() -> str:
    """Why the real control plane cannot run here, or "" when it can."""
    done = subprocess.run([str(SCRIPT), "bin"], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return (done.stderr.strip().splitlines() or ["not built"])[-1] + \
            " (scripts/control-plane build)"
    return ""


@contextlib.contextmanager
def real_apiserver(folder: Path) -> Iterator[Backend]:
    config, state = folder / "admin.kubeconfig", folder / "state"
    subprocess.run([str(SCRIPT), "up", "--kubeconfig", str(config), "--state", str(state),
                    "--crd", str(CRD), "--nodes", "4"], check=True, capture_output=True,
                   timeout=600)
    try:
        pids = {e["name"]: int(e["pid"]) for e in json.loads((state / "pids.json").read_text())}
        yield Backend("kube-apiserver", config,
                      [pids["etcd"], pids["kube-apiserver"], pids["kube-controller-manager"]],
                      [pids["kubelet"]])
    finally:
        subprocess.run([str(SCRIPT), "down", "--state", str(state)], capture_output=True,
                       timeout=300, check=False)


@contextlib.contextmanager
def sim_serve_backend(folder: Path) -> Iterator[Backend]:
    with sim_serve(folder) as (config, pid):
        yield Backend("sim serve", config, [pid])


def _accounts(core: k8s.CoreV1Api, names: list[str]) -> bool:
    try:
        for name in names:
            core.read_namespaced_service_account("default", name)
    except k8s.ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def _namespaces(client: k8s.ApiClient, real: bool) -> list[str]:
    api = KubeApi(client)
    names = [f"b7-{i}" for i in range(NAMESPACES)]
    for name in names:
        with contextlib.suppress(ApiError):  # 409: there already
            api.create("namespaces", "", {"apiVersion": "v1", "kind": "Namespace",
                                          "metadata": {"name": name}})
    if real:  # a real API server admits pods once the namespace's default account exists
        core = k8s.CoreV1Api(client)
        until(lambda: _accounts(core, names), 60, "the namespaces' default ServiceAccounts")
    return names


def _workers(api: KubeApi, ns: str, name: str, low: int, high: int) -> None:
    """Set the worker type's bounds (with no Ray load read, workers follow them)."""
    types = api.get("rayclusters", ns, name)["spec"]["podTypes"]
    for pod_type in types:
        if pod_type["name"] == "worker":
            pod_type["minWorkers"], pod_type["maxWorkers"] = low, high
    api.patch("rayclusters", ns, name, {"spec": {"podTypes": types}})


def _requests(operator: Operator) -> float:
    return total(scrape(operator.port), "ray_operator_api_request_duration_seconds_count{")


def workload(backend: Backend, clusters: int, workers: int) -> dict[str, float]:
    """One run of B7's workload on `backend`: rates, requests per pod, CPU and RSS."""
    client = admin(backend.kubeconfig)
    api = KubeApi(client)
    spaces = _namespaces(client, real=bool(backend.kubelet_pids))
    operator = Operator(backend.kubeconfig, "b7")
    try:
        until(operator.ready, 120, "the operator's first sync")
        names = [(spaces[i % len(spaces)], f"c{i}") for i in range(clusters)]
        for ns, name in names:
            api.create("rayclusters", ns, cluster_object(ns, name, 0, workers,
                                                         upscaling_speed=1000.0))
        until(lambda: operator.settled(clusters, 0), 600, "every head Running")
        groups = {"operator": [operator.proc.pid], "server": backend.server_pids,
                  "kubelet": backend.kubelet_pids}
        before = {group: usage(pids) for group, pids in groups.items()}
        requests = _requests(operator)
        started = time.monotonic()
        for ns, name in names:
            _workers(api, ns, name, workers, workers)
        until(lambda: operator.settled(clusters, clusters * workers), 3600,
               "every worker Running")
        up = time.monotonic() - started
        started = time.monotonic()
        for ns, name in names:
            _workers(api, ns, name, 0, 0)
        until(lambda: operator.settled(clusters, 0), 3600, "no worker left")
        until(lambda: not any(api.list("pods", ns, WORKERS)[0] for ns in spaces), 3600,
               "the API listing no worker pod")
        down = time.monotonic() - started
        requests = _requests(operator) - requests
        after = {group: usage(pids) for group, pids in groups.items()}
    finally:
        operator.stop()
    pods = clusters * workers
    out = {"created_per_second": pods / up, "deleted_per_second": pods / down,
           "requests_per_pod": requests / (2 * pods)}
    for group in groups:
        out[f"{group}_cpu_seconds"] = after[group].cpu_seconds - before[group].cpu_seconds
        out[f"{group}_peak_rss_bytes"] = after[group].peak_rss_bytes
    return out


def side_by_side(clusters: int, workers: int) -> dict[str, dict[str, float]]:
    """B7 on `sim serve` and on the real control plane, one after the other."""
    out = {}
    with tempfile.TemporaryDirectory(prefix="b7-") as tmp:
        with sim_serve_backend(Path(tmp)) as backend:
            out[backend.name] = workload(backend, clusters, workers)
        with real_apiserver(Path(tmp)) as backend:
            out[backend.name] = workload(backend, clusters, workers)
    return out

