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


@define
class ProcessKubelet:
    api: Api
    log: Any = print
    procs: dict[Key, subprocess.Popen[bytes]] = field(factory=dict)
    ips: dict[Key, str] = field(factory=dict)
    waiting: set[Key] = field(factory=set)  # workers whose head is not running yet
    stopping: list[tuple[float, subprocess.Popen[bytes]]] = field(factory=list)
    next_ip: int = 2

    def on_change(self, resource: str, kind: str, obj: dict[str, Any]) -> None:
        """The API's watcher: start a pod's Ray node when it appears, stop it when it goes."""
        if resource != "pods":
            return
        meta = obj["metadata"]
        key = (meta["namespace"], meta["name"])
        labels = meta.get("labels") or {}
        if LABEL_CLUSTER not in labels:
            return
        if kind == "DELETED" or meta.get("deletionTimestamp"):
            self.waiting.discard(key)  # (unbound pods are removed by the API at once)
            self._stop(key)
        elif kind == "ADDED":
            self.waiting.add(key)

    def tick(self) -> None:
        """Start what can start, fail what exited (called by the server every 0.5 s)."""
        for key in sorted(self.waiting):
            self._try_start(key)
        now = time.monotonic()
        for since, proc in list(self.stopping):
            if proc.poll() is not None:
                self.stopping.remove((since, proc))
            elif now - since > 15:
                _signal(proc, signal.SIGKILL)
        for key, proc in list(self.procs.items()):
            if proc.poll() is not None:
                del self.procs[key]
                self.log(f"{key[1]},{key[0]}: its Ray node exited with {proc.returncode}")
                if key in self.api.objects["pods"]:
                    self.api.patch_status("pods", key[0], key[1], {
                        "phase": "Failed", "reason": "RayNodeExited",
                        "message": f"ray start exited with {proc.returncode}"})

    def _head(self, pod: dict[str, Any]) -> tuple[str, int] | None:
        """The running head of the pod's cluster: its IP and its GCS port."""
        cluster = pod["metadata"]["labels"][LABEL_CLUSTER]
        ns = pod["metadata"]["namespace"]
        for (pod_ns, _), other in self.api.objects["pods"].items():
            labels = other["metadata"].get("labels") or {}
            if (pod_ns == ns and labels.get(LABEL_CLUSTER) == cluster
                    and labels.get(LABEL_KIND) == "head"
                    and not other["metadata"].get("deletionTimestamp")
                    and (other.get("status") or {}).get("phase") == "Running"):
                return str(other["status"]["podIP"]), _port(other)
        return None

    def _try_start(self, key: Key) -> None:
        pod = self.api.objects["pods"].get(key)
        if pod is None:
            self.waiting.discard(key)
            return
        head = pod["metadata"]["labels"].get(LABEL_KIND) == "head"
        ip = f"127.0.0.{self.next_ip}"
        args = [ray_command(), "start", "--block", f"--node-ip-address={ip}",
                "--disable-usage-stats"]
        if head:
            args += ["--head", f"--port={_port(pod)}", "--include-dashboard=false"]
        else:
            found = self._head(pod)
            if found is None:
                return  # Pending until its head runs
            args.append(f"--address={found[0]}:{found[1]}")
        self.waiting.discard(key)
        self.next_ip += 1
        resources = _env(pod).get("RAY_OVERRIDE_RESOURCES", "{}")
        env = {**os.environ, "RAY_OVERRIDE_RESOURCES": resources,
               "RAY_USAGE_STATS_ENABLED": "0"}
        self.procs[key] = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL, start_new_session=True)
        self.ips[key] = ip
        self.log(f"{key[1]},{key[0]}: started a Ray {'head' if head else 'worker'} at {ip} "
                 f"with {json.loads(resources)}")
        self.api.patch_status("pods", key[0], key[1], {
            "phase": "Running", "podIP": ip,
            "startTime": pod["metadata"].get("creationTimestamp"),
            "conditions": [{"type": "Ready", "status": "True"}]})

    def _stop(self, key: Key) -> None:
        """SIGTERM the node (`ray start --block` then stops its processes); SIGKILL after
        15 s. Never waits: this runs on the API server's loop."""
        proc = self.procs.pop(key, None)
        if proc is not None:
            _signal(proc, signal.SIGTERM)
            self.stopping.append((time.monotonic(), proc))

    def stop_all(self) -> None:
        for key in list(self.procs):
            self._stop(key)
        for _, proc in self.stopping:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                _signal(proc, signal.SIGKILL)
                proc.wait(10)
        self.stopping.clear()


def _signal(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
