"""`python -m sim kubelet`: the simulator's kubelet as a client of any Kubernetes API.

A real kube-apiserver without nodes leaves every pod Pending and every deleted pod
Terminating: binding pods to nodes is the scheduler's work, their status and the end of a
graceful deletion the kubelet's. This process does the three for a cluster that has
neither (the real control plane of `scripts/control-plane`, or `sim serve`):
- it registers `--nodes` Nodes with capacity and a Ready condition;
- it binds every unbound pod to one of them (a Binding, as the scheduler does);
- after `--startup` seconds it writes the pod Running with a pod IP, conditions and
  container statuses, as a kubelet reports a started container;
- a pod annotated `sim.ray.io/fail: "<exit code>"` gets its container terminated with that
  code and the pod Failed (how tests fail containers);
- a bound pod being deleted is deleted for good (grace period 0), as a kubelet does once
  its containers stopped.
Like a kubelet it outlives its API server: a call that cannot reach it is tried again
(statuses from the next tick, bindings and deletions from the list that follows the watch's
reconnection), never fatal.
With `--ray-processes` every pod of a Ray cluster is a local Ray node process
(`sim.processes.RayNodes`) whose loopback address is the pod IP; the pod fails when its node
exits.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes import watch as k8s_watch
from urllib3.exceptions import HTTPError

from engine.labels import LABEL_CLUSTER, LABEL_KIND
from sim.processes import RayNodes, head_of

FAIL_ANNOTATION = "sim.ray.io/fail"
NODE_CAPACITY = {"cpu": "256", "memory": "1Ti", "pods": "10000", "ephemeral-storage": "1Ti"}
Key = tuple[str, str]
UNREACHABLE = (HTTPError, OSError)  # the API server is down or restarting


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def node(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name,
                                                  "sim.ray.io/node": "true"}},
            "status": node_status()}


def node_status() -> dict[str, Any]:
    return {"capacity": NODE_CAPACITY, "allocatable": NODE_CAPACITY,
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "message": "sim kubelet is ready", "lastHeartbeatTime": _now(),
                            "lastTransitionTime": _now()}],
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}]}


def running(pod: dict[str, Any], ip: str) -> dict[str, Any]:
    """The status a kubelet reports for a pod whose containers all started."""
    now = _now()
    conditions = [{"type": kind, "status": "True", "lastTransitionTime": now}
                  for kind in ("PodScheduled", "Initialized", "ContainersReady", "Ready")]
    containers = [{"name": c.get("name", "c"), "image": c.get("image", ""), "imageID": "",
                   "ready": True, "started": True, "restartCount": 0,
                   "state": {"running": {"startedAt": now}}}
                  for c in (pod.get("spec") or {}).get("containers") or []]
    return {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "127.0.0.1",
            "hostIPs": [{"ip": "127.0.0.1"}], "startTime": now, "conditions": conditions,
            "containerStatuses": containers}


def failed(pod: dict[str, Any], code: int, reason: str, message: str) -> dict[str, Any]:
    now = _now()
    containers = [{"name": c.get("name", "c"), "image": c.get("image", ""), "imageID": "",
                   "ready": False, "started": False, "restartCount": 0,
                   "state": {"terminated": {"exitCode": code, "reason": reason,
                                            "message": message, "finishedAt": now}}}
                  for c in (pod.get("spec") or {}).get("containers") or []]
    return {"phase": "Failed", "reason": reason, "message": message,
            "containerStatuses": containers,
            "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": now}]}


class Kubelet:
    """Binds, starts, fails and finally deletes pods through the Kubernetes API."""

    def __init__(self, core: k8s.CoreV1Api, *, nodes: int = 1, startup: float = 0.5,
                 ray: RayNodes | None = None, log: Callable[[str], None] = print,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.core = core
        self.names = [f"sim-node-{i}" for i in range(nodes)]
        self.pick = itertools.cycle(self.names)
        self.startup = startup
        self.ray = ray
        self.log = log
        self.clock = clock
        self.pods: dict[Key, dict[str, Any]] = {}
        self.due: dict[Key, float] = {}  # bound pods to start, and when
        self.started: set[Key] = set()
        self.unsent: dict[Key, dict[str, Any]] = {}  # statuses the API did not receive
        self.inbox: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.next_ip = 1

    def register(self, stopping: threading.Event) -> None:
        for name in self.names:
            while not stopping.is_set():
                try:
                    self.core.create_node(node(name))  # type: ignore[arg-type]  # a dict as is
                except k8s.ApiException as exc:
                    if exc.status != 409:
                        raise
                except UNREACHABLE as exc:
                    self.log(f"sim kubelet: registering {name} failed ({exc}); again in 1 s")
                    stopping.wait(1.0)
                    continue
                self.core.patch_node_status(name, {"status": node_status()})
                break
        self.log(f"sim kubelet: nodes {', '.join(self.names)} are Ready")

    def run(self, stopping: threading.Event) -> None:
        self.register(stopping)
        threading.Thread(target=self._watch, args=(stopping,), daemon=True,
                         name="kubelet-watch").start()
        while not stopping.is_set():
            with contextlib.suppress(queue.Empty):
                kind, pod = self.inbox.get(timeout=0.2)
                self.handle(kind, pod)
                continue
            self.tick()

    def _watch(self, stopping: threading.Event) -> None:
        version = ""
        while not stopping.is_set():
            try:
                if not version:
                    listed = self.core.api_client.sanitize_for_serialization(
                        self.core.list_pod_for_all_namespaces())
                    version = listed["metadata"]["resourceVersion"]
                    for pod in listed.get("items") or []:
                        self.inbox.put(("ADDED", pod))
                stream = k8s_watch.Watch().stream(  # type: ignore[no-untyped-call]
                    self.core.list_pod_for_all_namespaces, resource_version=version,
                    timeout_seconds=60)
                for event in stream:
                    raw = event["raw_object"]
                    if event["type"] == "ERROR":
                        version = ""  # 410 Gone: list again
                        break
                    version = raw["metadata"]["resourceVersion"]
                    self.inbox.put((event["type"], raw))
            except Exception as exc:  # the API went away: try again shortly, from a list
                self.log(f"sim kubelet: watching pods failed ({exc}); listing again")
                version = ""
                stopping.wait(1.0)

    def handle(self, kind: str, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        key = (meta["namespace"], meta["name"])
        if kind == "DELETED":
            self._forget(key)
            return
        self.pods[key] = pod
        if meta.get("deletionTimestamp"):
            self._finish_deletion(key, pod)
        elif not (pod.get("spec") or {}).get("nodeName"):
            self._bind(key)
        elif key not in self.started and key not in self.due and (
                (pod.get("status") or {}).get("phase") in (None, "Pending")):
            self.due[key] = self.clock() + self.startup
        if key in self.started and FAIL_ANNOTATION in (meta.get("annotations") or {}) and (
                (pod.get("status") or {}).get("phase") == "Running"):
            code = int(str(meta["annotations"][FAIL_ANNOTATION]) or "1")
            self._status(key, failed(pod, code, "Error", f"the container exited with {code}"))
            if self.ray is not None:
                self.ray.stop(key)

    def tick(self) -> None:
        now = self.clock()
        for key, status in list(self.unsent.items()):
            del self.unsent[key]
            self._status(key, status)
            if key in self.unsent:
                break  # still down: the rest waits for the next tick
        for key, at in sorted(self.due.items(), key=lambda item: item[1]):
            if at <= now:
                self._start(key)
        if self.ray is not None:
            for key, code in self.ray.exited():
                pod = self.pods.get(key)
                if pod is not None:
                    self._status(key, failed(pod, code, "RayNodeExited",
                                             f"ray start exited with {code}"))

    def _bind(self, key: Key) -> None:
        target = next(self.pick)
        body = k8s.V1Binding(metadata=k8s.V1ObjectMeta(name=key[1], namespace=key[0]),
                             target=k8s.V1ObjectReference(api_version="v1", kind="Node",
                                                          name=target))
        try:
            self.core.create_namespaced_binding(key[0], body, _preload_content=False)
        except k8s.ApiException as exc:
            if exc.status not in (404, 409):  # gone, or bound meanwhile
                self.log(f"sim kubelet: binding {key[0]}/{key[1]} failed: {exc.status}")
        except UNREACHABLE as exc:  # bound once the watch lists it again
            self.log(f"sim kubelet: binding {key[0]}/{key[1]} failed ({exc})")

    def _start(self, key: Key) -> None:
        pod = self.pods.get(key)
        if pod is None:
            self.due.pop(key, None)
            return
        labels = pod["metadata"].get("labels") or {}
        if self.ray is not None and LABEL_CLUSTER in labels:
            head = None
            if labels.get(LABEL_KIND) != "head":
                head = head_of(self.pods.values(), pod)
                if head is None:
                    return  # Pending until its head runs
            if not self.ray.can_start():
                return  # one Ray node starts at a time on this machine
            ip = self.ray.start(key, pod, head)
        else:
            ip = f"10.244.{self.next_ip // 250}.{self.next_ip % 250 + 1}"
            self.next_ip += 1
        self.due.pop(key, None)
        self.started.add(key)
        self._status(key, running(pod, ip))

    def _finish_deletion(self, key: Key, pod: dict[str, Any]) -> None:
        if self.ray is not None:
            self.ray.stop(key)
        self.due.pop(key, None)
        with contextlib.suppress(k8s.ApiException, *UNREACHABLE):  # gone, or listed again
            self.core.delete_namespaced_pod(
                key[1], key[0], grace_period_seconds=0,
                body=k8s.V1DeleteOptions(grace_period_seconds=0, preconditions=k8s.V1Preconditions(
                    uid=pod["metadata"].get("uid"))))

    def _forget(self, key: Key) -> None:
        self.pods.pop(key, None)
        self.due.pop(key, None)
        self.started.discard(key)
        self.unsent.pop(key, None)
        if self.ray is not None:
            self.ray.stop(key)

    def _status(self, key: Key, status: dict[str, Any]) -> None:
        try:
            self.core.patch_namespaced_pod_status(key[1], key[0], {"status": status})
        except k8s.ApiException as exc:
            if exc.status != 404:
                self.log(f"sim kubelet: status of {key[0]}/{key[1]} failed: {exc.status}")
        except UNREACHABLE:
            if not self.unsent:
                self.log("sim kubelet: the API server is unreachable; statuses wait for it")
            self.unsent[key] = status
            time.sleep(0.2)  # not a busy loop while it is down


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim kubelet", description=__doc__)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--nodes", type=int, default=1)
    parser.add_argument("--startup", type=float, default=0.5,
                        help="seconds from binding a pod to reporting it Running")
    parser.add_argument("--ray-processes", action="store_true",
                        help="run every Ray pod as a local Ray node process")
    args = parser.parse_args(argv)
    if not 1 <= args.nodes <= 1000:
        parser.error(f"--nodes: expected 1 to 1000, got {args.nodes}")
    configuration = k8s.Configuration()
    k8s_config.load_kube_config(config_file=args.kubeconfig,  # type: ignore[no-untyped-call]
                                client_configuration=configuration)
    core = k8s.CoreV1Api(k8s.ApiClient(configuration))

    def log(line: str) -> None:
        print(line, flush=True)
    ray = RayNodes(log=log) if args.ray_processes else None
    kubelet = Kubelet(core, nodes=args.nodes, startup=args.startup, ray=ray, log=log)
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    try:
        kubelet.run(stopping)
    finally:
        if ray is not None:
            ray.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
