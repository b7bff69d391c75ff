"""A real Ray cluster autoscaled end to end on this machine: `sim serve --ray-processes`
makes every pod a local Ray node process, the real `ray-operator` reads the real head's load,
work the head cannot run brings two workers up, the work finishes on them, and once idle they
are removed and the cluster is back to its head. The commands of docs/install.md, as a test."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sim import processes
from tests.helpers import free_port, logged, until
from tests.realk8s.plane import kubectl_binary

pytestmark = pytest.mark.slow
ROOT = Path(__file__).parent.parent.parent


class Local:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.config = tmp / "local.kubeconfig"
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, name: str, *args: str) -> subprocess.Popen[str]:
        log = (self.tmp / f"{name}.log").open("w")
        proc = subprocess.Popen([sys.executable, *args], stdout=log, stderr=subprocess.STDOUT,
                                text=True, cwd=ROOT, start_new_session=True)
        self.procs.append(proc)
        return proc

    def kubectl(self, *args: str) -> str:
        return subprocess.run([kubectl_binary(), "--kubeconfig", str(self.config), *args],
                              capture_output=True, text=True, timeout=60, check=True).stdout

    def pods(self) -> list[str]:
        """the cluster's running pods, by Ray node type"""
        out = self.kubectl("get", "pods", "-n", "ray", "-l", "ray-cluster-name=local", "-o",
                           "jsonpath={range .items[*]}{.metadata.labels.ray-node-type} "
                           "{.status.phase}{'\\n'}{end}")
        return sorted(line.split()[0] for line in out.splitlines() if line.endswith("Running"))

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text()


@pytest.fixture()
def local(tmp_path: Path) -> Iterator[Local]:
    world = Local(tmp_path)
    try:
        yield world
    finally:
        for proc in reversed(world.procs):  # the operator first, then the server (its nodes)
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
        subprocess.run([processes.ray_command(), "stop", "--force"], capture_output=True,
                       timeout=120)  # whatever Ray process is left, also after a failure


def up(local: Local) -> None:
    """`sim serve --ray-processes`, the operator on it and the local cluster's head running:
    the commands of docs/install.md."""
    port = free_port()
    local.start("serve", "-m", "sim", "serve", "--ray-processes", "--port", str(port),
                "--kubeconfig", str(local.config), "--namespace", "ray")
    until(local.config.exists)
    local.start("operator", "-m", "adapters", "--kubeconfig", str(local.config),
                "--operator-name", "local", "--ray-address", "{ip}:{port}",
                "--ray-poll-seconds", "2", "--metrics-port", str(free_port()))
    local.kubectl("apply", "--validate=false", "-f", str(ROOT / "examples" /
                                                         "local-ray-cluster.yaml"))
    until(lambda: local.pods() == ["head"], seconds=60)


def test_a_real_ray_cluster_scales_up_for_work_and_back_down_when_idle(local: Local) -> None:
    up(local)
    driver = local.start("burst", str(ROOT / "examples" / "burst.py"), "--kubeconfig",
                         str(local.config), "--tasks", "2", "--seconds", "5")
    until(lambda: local.pods() == ["head", "worker", "worker"], seconds=120)
    driver.wait(180)
    assert driver.returncode == 0, local.log("burst")
    assert "2 tasks done" in local.log("burst")
    tasks = json.loads(local.log("burst").split("tasks: ", 1)[1].splitlines()[0])
    first, second = tasks
    assert first["node"] != second["node"]  # two workers (only one joined before) ...
    assert max(first["start"], second["start"]) < min(first["end"], second["end"])  # at once
    until(lambda: local.pods() == ["head"], seconds=120)  # idle 6 s, then removed
    log = local.log("operator")
    assert logged(log, "local,ray", "INFO", "Adding 2 nodes of type worker."), log
    assert "reading each cluster's Ray load" in log


def test_ray_status_shows_the_operators_workers_and_what_no_type_can_hold(
        local: Local) -> None:
    up(local)
    local.start("burst", str(ROOT / "examples" / "burst.py"), "--kubeconfig",
                str(local.config), "--tasks", "1", "--seconds", "60", "--impossible", "64")
    until(lambda: local.pods() == ["head", "worker"], seconds=120)
    head = local.kubectl("get", "pods", "-n", "ray", "-l", "ray-node-type=head", "-o",
                         "jsonpath={.items[0].status.podIP}")

    def status() -> str:
        return subprocess.run([processes.ray_command(), "status", "--address", f"{head}:6380"],
                              capture_output=True, text=True, timeout=60).stdout

    def shown() -> bool:
        """ray status lists the worker the operator launched and the impossible task"""
        out = status()
        return "1 worker" in out and "'CPU': 64.0" in out and "infeasible" in out
    until(shown, seconds=60)
    out = status()
    assert "No cluster status" not in out and "1 head" in out, out
    assert "no pod type can hold {CPU: 64}" in out, out
    obj = json.loads(local.kubectl("get", "raycluster", "-n", "ray", "local", "-o", "json"))
    feasible = next(c for c in obj["status"]["conditions"] if c["type"] == "DemandFeasible")
    assert feasible["status"] == "False" and "{CPU: 64}" in feasible["message"]
    events = local.kubectl("get", "events", "-n", "ray", "-o", "jsonpath={.items[*].reason}")
    assert "InfeasibleDemand" in events.split()
