"""B4: the resident memory of one real `ray-operator` process managing many clusters.

Everything is real but the cluster: `python -m sim serve` (its own process, so its memory is
not counted) plays the Kubernetes API, and the operator process talks to it over HTTP with
the official client, exactly as in a pod. The operator first runs with no clusters (the
baseline: interpreter, client, metrics); then it creates `clusters` x `pods` pods itself and
we read its RSS once all are Running; then a fresh process adopts them all from a relist (the
paged list path) and we read its RSS again. Requests are counted by the operator's own
`ray_operator_api_request_duration_seconds` histogram.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from kubernetes import client as k8s
from kubernetes import config as k8s_config

from adapters.kube import KubeApi, api_client
from sim.clusters import cluster_object
from sim.serve import free_port

SETTLE = 1.0  # seconds to let the process go quiet before its RSS is read


def until(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.25)
    raise TimeoutError(f"{what} not within {seconds:.0f} s")


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def scrape(port: int) -> dict[str, float]:
    """The operator's /metrics as {name{labels}: value}."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
    out: dict[str, float] = {}
    for line in text.decode().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def total(samples: dict[str, float], prefix: str) -> float:
    return sum(v for k, v in samples.items() if k.startswith(prefix))


class Operator:
    def __init__(self, config: Path, name: str) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "adapters", "--kubeconfig", str(config), "--operator-name",
             name, "--metrics-port", str(self.port), "--qps", "100000", "--burst", "100000",
             "--no-ray-load"],  # simulated heads run no Ray: see ray_client_bytes
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def ready(self) -> bool:
        return bool(urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz",
                                           timeout=5).status == 200)

    def settled(self, clusters: int, workers: int) -> bool:
        s = scrape(self.port)
        return (s.get('ray_operator_clusters{phase="Running"}', 0) == clusters
                and total(s, "ray_operator_live_workers{") == workers
                and total(s, "ray_operator_desired_workers{") == workers)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def ray_client_bytes() -> int:
    """What importing Ray's GCS client adds to the operator process (once any head is read;
    B4's simulated heads run no Ray, so its operators run with --no-ray-load)."""
    code = ("import os, adapters.__main__; from bench.process import rss_bytes; "
            "a = rss_bytes(os.getpid()); "
            "from ray._raylet import GcsClient; from ray.autoscaler.v2 import sdk; "
            "print(rss_bytes(os.getpid()) - a)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    return int(out.strip())


@contextlib.contextmanager
def sim_serve(folder: Path, namespaces: Iterable[str] = ()) -> Iterator[tuple[Path, int]]:
    """`python -m sim serve` in a process of its own (its memory is not the operator's),
    with `namespaces` created: its kubeconfig and pid, until the block ends."""
    config = folder / "kubeconfig"
    server = subprocess.Popen(
        [sys.executable, "-m", "sim", "serve", "--port", str(free_port()), "--kubeconfig",
         str(config), *(f"--namespace={ns}" for ns in namespaces)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "COLUMNS": "120"})
    try:
        until(config.exists, 60, "sim serve")
        yield config, server.pid
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()


def admin(kubeconfig: Path) -> k8s.ApiClient:
    """The official client with `kubeconfig`'s server and credentials."""
    configuration = k8s.Configuration()
    k8s_config.load_kube_config(config_file=str(kubeconfig),  # type: ignore[no-untyped-call]
                                client_configuration=configuration)
    return api_client(configuration)


def operator_memory(*, clusters: int, pods_per_cluster: int) -> dict[str, float]:
    """One B4 run: RSS figures in bytes, requests per created pod, seconds to all Running."""
    workers = clusters * (pods_per_cluster - 1)
    pods = clusters * pods_per_cluster
    with tempfile.TemporaryDirectory(prefix="b4-") as tmp, \
            sim_serve(Path(tmp), [f"ns{i}" for i in range(10)]) as (config, _):
        api = KubeApi(admin(config))
        first = Operator(config, "b4")
        try:
            until(first.ready, 60, "the operator's first sync")
            time.sleep(SETTLE)
            baseline = rss_bytes(first.proc.pid)
            started = time.monotonic()
            for i in range(clusters):
                api.create("rayclusters", f"ns{i % 10}", cluster_object(
                    f"ns{i % 10}", f"c{i}", pods_per_cluster - 1, pods_per_cluster - 1))
            until(lambda: first.settled(clusters, workers), 3600, "all pods Running")
            up_seconds = time.monotonic() - started
            time.sleep(SETTLE)
            created = rss_bytes(first.proc.pid)
            samples = scrape(first.port)
            requests = total(samples, "ray_operator_api_request_duration_seconds_count{")
        finally:
            first.stop()
        second = Operator(config, "b4")  # the same install: it adopts, creates nothing
        try:
            until(lambda: second.settled(clusters, workers), 3600, "adoption")
            time.sleep(SETTLE)
            adopted = rss_bytes(second.proc.pid)
            creates = scrape(second.port).get(
                'ray_operator_actions_total{kind="CreatePod"}', 0.0)
        finally:
            second.stop()
    return {"baseline_bytes": baseline, "rss_bytes": created, "adopted_rss_bytes": adopted,
            "bytes_per_pod": (created - baseline) / pods,
            "adopted_bytes_per_pod": (adopted - baseline) / pods,
            "requests_per_pod": requests / pods, "up_seconds": up_seconds,
            "pods_created_after_restart": creates}
