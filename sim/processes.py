"""Pods as local Ray processes: a kubelet for `sim serve --ray-processes`.

With it, the simulated cluster's pods are real: a pod the operator creates starts a real Ray
node on this machine (`ray start --block`), the head with its `--port`, workers joining it,
each with the resources the operator wrote into the pod (`RAY_OVERRIDE_RESOURCES`) and an
address of its own on the loopback network (127.0.0.2, 127.0.0.3, ...), which is its pod IP:
the operator's Ray load adapter maps Ray nodes to pods by IP, as on Kubernetes. Deleting the
pod stops the node; a node that exits fails its pod. The operator cannot tell this from a real
cluster: the same `ray-operator` process reads the real head's load and scales real workers
(`--ray-address '{ip}:{port}'`, since there is no cluster DNS here).

It replaces the simulated kubelet and Ray model (`World(kubelet=False)`); it runs on the
server's event loop, like the rest of the simulated API. Keep clusters small: every node is a
few Ray processes.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from attrs import define, field

from engine.labels import LABEL_CLUSTER, LABEL_KIND
from sim.api import Api

PORT = re.compile(r"--port[= ]+(\d+)")
Key = tuple[str, str]


def ray_command() -> str:
    return shutil.which("ray") or str(Path(sys.executable).parent / "ray")


def _env(pod: dict[str, Any]) -> dict[str, str]:
    container = (pod.get("spec", {}).get("containers") or [{}])[0]
    return {str(e["name"]): str(e.get("value", "")) for e in container.get("env") or []
            if "name" in e}


def _port(pod: dict[str, Any]) -> int:
    container = (pod.get("spec", {}).get("containers") or [{}])[0]
    found = PORT.search(" ".join(container.get("args") or []))
    return int(found.group(1)) if found else 6379


START_GAP = 3.0
PORT_BASE = 21_000
PORTS_PER_NODE = 100


def node_ports(index: int) -> list[str]:
    """`ray start` flags giving node `index` a block of ports of its own. Left to Ray, two
    nodes starting at the same instant on one machine race for the same free port (one
    died with "bind: Address already in use")."""
    base = PORT_BASE + PORTS_PER_NODE * (index % 400)
    return [f"--node-manager-port={base}", f"--object-manager-port={base + 1}",
            f"--metrics-export-port={base + 2}", f"--dashboard-agent-listen-port={base + 3}",
            f"--dashboard-agent-grpc-port={base + 4}", f"--runtime-env-agent-port={base + 5}",
            f"--min-worker-port={base + 10}", f"--max-worker-port={base + PORTS_PER_NODE - 1}"]


@define
class RayNodes:
    """One local Ray node process per pod, each on a loopback address of its own (its pod
    IP) and a block of ports of its own; whoever watches the pods says when to start and
    stop them."""

    log: Any = print
    procs: dict[Key, subprocess.Popen[bytes]] = field(factory=dict)
    ips: dict[Key, str] = field(factory=dict)
    stopping: list[tuple[float, subprocess.Popen[bytes]]] = field(factory=list)
    started: int = 0
    last_start: float = -math.inf

    def can_start(self) -> bool:
        """Whether a node may start now: nodes on one machine share Ray's session folder,
        and two `ray start` at the same instant leave one hanging unregistered (seen with
        two workers), so starts are at least START_GAP apart."""
        return time.monotonic() - self.last_start >= START_GAP

    def start(self, key: Key, pod: dict[str, Any], head: tuple[str, int] | None) -> str:
        """Start the node of `pod` (a worker joins `head`, its IP and GCS port); return its IP."""
        is_head = head is None
        self.last_start = time.monotonic()
        index = self.started
        self.started += 1
        ip = f"127.0.{index // 250}.{index % 250 + 2}"  # 127.0.0.2, 127.0.0.3, ...
        args = [ray_command(), "start", "--block", f"--node-ip-address={ip}",
                "--disable-usage-stats", *node_ports(index)]
        if is_head:
            args += ["--head", f"--port={_port(pod)}", "--include-dashboard=false"]
        else:
            assert head is not None
            args.append(f"--address={head[0]}:{head[1]}")
        resources = _env(pod).get("RAY_OVERRIDE_RESOURCES", "{}")
        env = {**os.environ, "RAY_OVERRIDE_RESOURCES": resources,
               "RAY_USAGE_STATS_ENABLED": "0"}
        self.procs[key] = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL, start_new_session=True)
        self.ips[key] = ip
        self.log(f"{key[1]},{key[0]}: started a Ray {'head' if is_head else 'worker'} at {ip} "
                 f"with {json.loads(resources)}")
        return ip

    def stop(self, key: Key) -> None:
        """SIGTERM the node (`ray start --block` then stops its processes); SIGKILL after
        15 s (`exited` checks). Never waits."""
        proc = self.procs.pop(key, None)
        if proc is not None:
            _signal(proc, signal.SIGTERM)
            self.stopping.append((time.monotonic(), proc))

    def exited(self) -> list[tuple[Key, int]]:
        """Nodes that exited by themselves since the last call (and their exit codes);
        kills what was stopped and still runs after 15 s."""
        now = time.monotonic()
        for since, proc in list(self.stopping):
            if proc.poll() is not None:
                self.stopping.remove((since, proc))
            elif now - since > 15:
                _signal(proc, signal.SIGKILL)
        out = []
        for key, proc in list(self.procs.items()):
            if proc.poll() is not None:
                del self.procs[key]
                self.log(f"{key[1]},{key[0]}: its Ray node exited with {proc.returncode}")
                out.append((key, int(proc.returncode)))
        return out

    def stop_all(self) -> None:
        for key in list(self.procs):
            self.stop(key)
        for _, proc in self.stopping:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                _signal(proc, signal.SIGKILL)
                proc.wait(10)
        self.stopping.clear()


def head_of(pods: Any, pod: dict[str, Any]) -> tuple[str, int] | None:
    """The running head of `pod`'s cluster among `pods` (objects): its IP and GCS port."""
    cluster = pod["metadata"]["labels"][LABEL_CLUSTER]
    ns = pod["metadata"]["namespace"]
    for other in pods:
        labels = other["metadata"].get("labels") or {}
        if (other["metadata"].get("namespace") == ns and labels.get(LABEL_CLUSTER) == cluster
                and labels.get(LABEL_KIND) == "head"
                and not other["metadata"].get("deletionTimestamp")
                and (other.get("status") or {}).get("phase") == "Running"
                and (other.get("status") or {}).get("podIP")):
            return str(other["status"]["podIP"]), _port(other)
    return None


@define
class ProcessKubelet:
    """The in-memory API's pods as local Ray nodes (`sim serve --ray-processes`)."""

    api: Api
    log: Any = print
    nodes: RayNodes = field(init=False)
    waiting: set[Key] = field(factory=set)  # pods whose node has not started (workers wait
    # for their head)

    def __attrs_post_init__(self) -> None:
        self.nodes = RayNodes(log=self.log)

    def on_change(self, resource: str, kind: str, obj: dict[str, Any]) -> None:
        """The API's watcher: start a pod's Ray node when it appears, stop it when it goes."""
        if resource != "pods":
            return
        meta = obj["metadata"]
        key = (meta["namespace"], meta["name"])
        if LABEL_CLUSTER not in (meta.get("labels") or {}):
            return
        if kind == "DELETED" or meta.get("deletionTimestamp"):
            self.waiting.discard(key)  # (unbound pods are removed by the API at once)
            self.nodes.stop(key)
        elif kind == "ADDED":
            self.waiting.add(key)

    def tick(self) -> None:
        """Start what can start, fail what exited (called by the server every 0.5 s)."""
        for key in sorted(self.waiting):
            self._try_start(key)
        for key, code in self.nodes.exited():
            if key in self.api.objects["pods"]:
                self.api.patch_status("pods", key[0], key[1], {
                    "phase": "Failed", "reason": "RayNodeExited",
                    "message": f"ray start exited with {code}"})

    def _try_start(self, key: Key) -> None:
        pod = self.api.objects["pods"].get(key)
        if pod is None:
            self.waiting.discard(key)
            return
        head = None
        if pod["metadata"]["labels"].get(LABEL_KIND) != "head":
            head = head_of(self.api.objects["pods"].values(), pod)
            if head is None:
                return  # Pending until its head runs
        if not self.nodes.can_start():
            return  # the next tick
        self.waiting.discard(key)
        ip = self.nodes.start(key, pod, head)
        self.api.patch_status("pods", key[0], key[1], {
            "phase": "Running", "podIP": ip,
            "startTime": pod["metadata"].get("creationTimestamp"),
            "conditions": [{"type": "Ready", "status": "True"}]})

    def stop_all(self) -> None:
        self.nodes.stop_all()


def _signal(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
