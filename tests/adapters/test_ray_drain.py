"""Draining on a real Ray head (the `ray` package): a head with no CPUs and one worker node
at its own address, as `sim serve --ray-processes` runs them. Ray refuses to drain the
worker while a task runs there (the operator keeps the pod), accepts once it is idle, and
then places nothing new on it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters import ray_load
from sim.processes import RayNodes, ray_command
from tests.e2e.test_process import free_port
from tests.helpers import until

pytestmark = pytest.mark.slow
DRIVER = '''
import sys, time, ray
ray.init(address=sys.argv[1], logging_level="ERROR")
@ray.remote(num_cpus=1)
def work(seconds):
    time.sleep(seconds)
    return ray.util.get_node_ip_address()
print("started", flush=True)
print("ran on", ray.get(work.remote(float(sys.argv[2]))), flush=True)
sys.stdin.readline()  # the test drained the worker
ref = work.remote(0.0)  # no node takes it
ready, _ = ray.wait([ref], timeout=float(sys.argv[3]))
print("placed" if ready else "pending", flush=True)
'''


def pod(args: str, resources: dict[str, float]) -> dict[str, Any]:
    return {"spec": {"containers": [{"args": [args], "env": [
        {"name": "RAY_OVERRIDE_RESOURCES", "value": json.dumps(resources)}]}]}}


@pytest.fixture()
def cluster() -> Iterator[tuple[str, str]]:
    """(GCS address, worker IP) of a real head (0 CPUs) and one 1-CPU worker."""
    nodes = RayNodes(log=lambda line: None)
    port = free_port()
    head_ip = nodes.start(("ray", "head"), pod(f"ray start --head --port={port}", {"CPU": 0}),
                          None)
    address = f"{head_ip}:{port}"
    try:
        until(lambda: _nodes(address) == 1, seconds=120)
        time.sleep(3.0)  # nodes on one machine start apart (sim.processes.START_GAP)
        worker_ip = nodes.start(("ray", "worker"), pod("ray start", {"CPU": 1}),
                                (head_ip, port))
        until(lambda: _nodes(address) == 2, seconds=120)
        yield address, worker_ip
    finally:
        nodes.stop_all()
        subprocess.run([ray_command(), "stop", "--force"], capture_output=True, timeout=120)


def _nodes(address: str) -> int:
    try:
        return len(ray_load.to_event(ray_load.read(address), cluster=("ray", "r"), at=0).nodes)
    except ray_load.LoadError:
        return 0


def test_ray_refuses_to_drain_a_busy_worker_and_accepts_once_idle(
        cluster: tuple[str, str], tmp_path: Path) -> None:
    address, worker = cluster
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    driver = subprocess.Popen([sys.executable, str(script), address, "8", "5"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True,
                              env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"},
                              start_new_session=True)
    try:
        assert driver.stdout is not None and driver.stdout.readline().strip() == "started"
        until(lambda: _busy(address, worker), seconds=30)
        refused = ray_load.drain(address, worker, message="test: idle", deadline=time.time() + 60)
        assert not refused.accepted and refused.reason  # Ray says why
        assert driver.stdout.readline().strip() == f"ran on {worker}"  # the task completed
        until(lambda: not _busy(address, worker), seconds=30)
        accepted = ray_load.drain(address, worker, message="test: idle",
                                  deadline=time.time() + 60)
        assert accepted.accepted, accepted.reason
        assert driver.stdin is not None
        driver.stdin.write("drained\n")
        driver.stdin.flush()
        assert driver.stdout.readline().strip() == "pending"  # nothing new on a drained node
    finally:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait(30)


def test_a_node_ray_does_not_list_has_nothing_to_drain(cluster: tuple[str, str]) -> None:
    address, _ = cluster
    answer = ray_load.drain(address, "127.0.9.9", message="gone", deadline=time.time())
    assert answer.accepted and "no Ray node" in answer.reason


def _busy(address: str, ip: str) -> bool:
    load = ray_load.to_event(ray_load.read(address), cluster=("ray", "r"), at=0)
    return any(n.ip == ip and n.available.get("CPU", 0.0) < 1.0 for n in load.nodes)
