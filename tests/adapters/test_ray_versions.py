"""The operator's client against real heads of several Ray versions, each from its own
environment (`scripts/ray-versions build`): a head with no CPUs and a 1-CPU worker; the load
read names both, a drain is refused while a task runs on the worker and accepted once it is
idle, and `ray status` of that version prints the status the operator wrote, the worker's
type and the demand no type can hold."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters import ray_load, ray_versions
from engine import events as ev
from engine import raystatus
from engine import state as st
from sim.processes import node_ports
from tests.builders import raycluster
from tests.e2e.test_process import free_port
from tests.helpers import until

pytestmark = pytest.mark.slow
DRIVER = '''
import sys, time, ray
ray.init(address=sys.argv[1], logging_level="ERROR")
@ray.remote(num_cpus=1)
def work(seconds):
    time.sleep(seconds)
ray.remote(num_cpus=64)(lambda: None).remote()  # no node can hold it
print("started", flush=True)
ray.get(work.remote(float(sys.argv[2])))
print("done", flush=True)
time.sleep(3600)
'''


class Head:
    def __init__(self, version: str, folder: Path) -> None:
        self.bin = ray_versions.environment(version) / "bin"
        self.env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0",
                    "PATH": f"{self.bin}:{os.environ['PATH']}",
                    # a head as the operator starts it: no autoscaler of Ray's own, v1's
                    # status key (a v2 head shows the GCS's view, not the operator's)
                    "RAY_enable_autoscaler_v2": "0"}
        self.env.pop("PYTHONPATH", None)
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.folder = folder

    def ray(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.bin / "ray"), *args], capture_output=True, text=True,
                              env=self.env, timeout=180)


@pytest.fixture(params=ray_versions.TESTED)
def head(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Head]:
    version = request.param
    if not (ray_versions.environment(version) / "built").exists():
        message = f"Ray {version} is not built: scripts/ray-versions build"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    h = Head(version, tmp_path)
    started = h.ray("start", "--head", f"--port={h.port}", "--num-cpus=0",
                    "--include-dashboard=false", "--disable-usage-stats",
                    "--node-ip-address=127.0.0.1", *node_ports(390))
    assert started.returncode == 0, started.stderr
    try:
        time.sleep(3.0)
        joined = h.ray("start", f"--address={h.address}", "--num-cpus=1",
                       "--node-ip-address=127.0.0.2", "--disable-usage-stats",
                       *node_ports(391))
        assert joined.returncode == 0, joined.stderr
        until(lambda: _nodes(h.address) == 2, seconds=120)
        yield h
    finally:
        h.ray("stop", "--force")


def _nodes(address: str) -> int:
    try:
        return len(ray_load.to_event(ray_load.read(address), cluster=("ray", "r"), at=0).nodes)
    except ray_load.LoadError:
        return 0


def _busy(address: str) -> bool:
    load = ray_load.to_event(ray_load.read(address), cluster=("ray", "r"), at=0)
    return any(n.ip == "127.0.0.2" and n.available.get("CPU", 0.0) < 1.0 for n in load.nodes)


def _state(address: str) -> st.ClusterState:
    """The engine's state of a cluster whose pods are these two nodes, after one read."""
    load = ray_load.to_event(ray_load.read(address), cluster=("ray", "r"), at=time.time())
    head_ip = next(n.ip for n in load.nodes if n.ip != "127.0.0.2")
    obj = raycluster("r", "ray")
    state = st.initial(synced=True)
    events: list[ev.Event] = [ev.ClusterSeen(cluster=("ray", "r"), at=load.at, uid="u",
                                             generation=1, obj=obj)]
    for name, role, pod_type, ip in (("r-head", ev.HEAD, "head-node", head_ip),
                                     ("r-worker", ev.WORKER, "worker-node", "127.0.0.2")):
        events.append(ev.PodSeen(cluster=("ray", "r"), at=load.at, name=name, role=role,
                                 pod_type=pod_type, phase=ev.RUNNING, ip=ip))
    for event in [*events, load]:
        state = st.evolve(state, event)
    return state.clusters[("ray", "r")]


def test_the_operator_reads_drains_and_reports_to_this_ray_version(head: Head) -> None:
    script = head.folder / "driver.py"
    script.write_text(DRIVER)
    driver = subprocess.Popen([str(head.bin / "python"), str(script), head.address, "8"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                              env=head.env, start_new_session=True)
    try:
        assert driver.stdout is not None
        assert "started" in iter(lambda: driver.stdout.readline().strip(), "")
        until(lambda: _busy(head.address), seconds=60)
        refused = ray_load.drain(head.address, "127.0.0.2", message="test",
                                 deadline=time.time() + 60)
        assert not refused.accepted
        cs = _state(head.address)
        ray_load.publish(head.address, json.dumps(raystatus.report(cs, time.time())).encode(),
                         b"Warning: infeasible demand: no pod type can hold {CPU: 64}.")
        shown = head.ray("status", "--address", head.address).stdout
        assert "1 worker-node" in shown and "1 head-node" in shown, shown
        assert "'CPU': 64.0" in shown and "infeasible demand" in shown, shown
        assert "done" in iter(lambda: driver.stdout.readline().strip(), "")  # the task ended
        until(lambda: not _busy(head.address), seconds=60)
        accepted = ray_load.drain(head.address, "127.0.0.2", message="test",
                                  deadline=time.time() + 60)
        assert accepted.accepted, accepted.reason
    finally:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait(30)
