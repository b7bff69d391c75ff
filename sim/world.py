"""The simulated world: Kubernetes API, kubelet, Ray and operator installs in virtual time.

A discrete-event loop (a heap of timed callbacks) drives everything; nothing reads the wall
clock and every random draw comes from one generator seeded by the scenario, so the same
scenario and seed give the same run, byte for byte (the trace proves it). After each
callback the operators drain their inboxes: the API's watch notifications reach every
operator whose scope covers the object, exactly as a watch would deliver them.

Models:
- kubelet and scheduler (kwok-style stages): a new pod is bound to a node with room (or
  stays Pending, unschedulable), goes Running after `podStartup.delay` plus up to `jitter`,
  gets an IP; a deleted pod stops after a short grace and disappears;
- Ray: see `sim.ray`; a cluster's Ray is up while its head pod's Ray is; workers join it;
- load reports every 5 s per cluster, to the operators covering it.

Invariants checked during the run become `violations` (docs/simulator.md).
"""

from __future__ import annotations

import contextlib
import gc
import heapq
import json
import random
from collections import Counter
from collections.abc import Callable
from typing import Any, TextIO

import attrs
from attrs import define, field

from driver.budget import Budget
from driver.execute import ApiError
from driver.operator import WATCHED, Operator
from engine import actions as act
from engine import claims, codec, ownership
from engine import events as ev
from engine import state as st
from engine.labels import LABEL_CLUSTER, LABEL_KIND, LABEL_TYPE
from sim import ray as raymodel
from sim.api import Api, Client, Fault
from sim.scenario import Expectation, Scenario, Step

LOAD_PERIOD = 5.0
RAY_JOIN_DELAY = 1.0
TERMINATION_GRACE = 1.0
SAMPLE_PERIOD = 5.0


@define
class Capacity:
    name: str
    cpu: float
    memory: float
    gpu: float


@define
class World:
    scenario: Scenario
    trace_out: TextIO | None = None
    log: Callable[[str], None] = lambda line: None
    now: float = 0.0
    heap: list[tuple[float, int, Callable[[], None]]] = field(factory=list)
    seq: int = 0
    api: Api = field(init=False)
    rng: random.Random = field(init=False)
    operators: dict[str, Operator] = field(factory=dict)
    ray: dict[ev.ClusterKey, raymodel.RayCluster] = field(factory=dict)
    capacity: list[Capacity] | None = None
    bound: dict[tuple[str, str], tuple[int, dict[str, float]]] = field(factory=dict)
    unschedulable: list[tuple[str, str]] = field(factory=list)
    ips: int = 0
    trace_seq: int = 0
    events: int = 0
    actions: Counter[str] = field(factory=Counter)
    violations: list[str] = field(factory=list)
    results: list[dict[str, Any]] = field(factory=list)
    demand_since: dict[ev.ClusterKey, float] = field(factory=dict)
    latencies: list[float] = field(factory=list)
    deleting_idle: set[tuple[str, str]] = field(factory=set)
    series: list[tuple[float, str, int, int]] = field(factory=list)
    stopping: set[tuple[str, str]] = field(factory=set)
    requeues: set[tuple[str, str, float]] = field(factory=set)
    cluster_pods: dict[ev.ClusterKey, dict[str, None]] = field(factory=dict)  # by cluster
    reported: dict[tuple[str, ev.ClusterKey], dict[str, int]] = field(factory=dict)
    sampling: bool = False  # keep live/desired workers over time (for --plot)
    cut: dict[str, float] = field(factory=dict)  # operator -> its watches are down until
    requests_memo: dict[int, tuple[Any, dict[str, float]]] = field(factory=dict)
    acted: dict[ev.ClusterKey, dict[str, int]] = field(factory=dict)  # install -> last epoch
    lease_seconds: float = claims.LEASE_SECONDS
    log_to: Callable[[str, str], None] | None = None  # (operator, line): its own log
    claims_seen: dict[ev.ClusterKey, tuple[Any, claims.Claim | None]] = field(factory=dict)
    clients: list[Client] = field(factory=list)  # every operator client ever started
    kubelet: bool = True  # simulate pods and Ray (False: another kubelet runs them)
    tickers: list[Callable[[], None]] = field(factory=list)  # run by `sim serve`'s clock

    def __attrs_post_init__(self) -> None:
        self.api = Api(now=lambda: self.now)
        self.api.watchers.append(self._on_change)
        self.rng = random.Random(self.scenario.seed)
        if self.scenario.nodes:
            self.capacity = [
                Capacity(name=f"{pool.name}-{i}", cpu=pool.cpu, memory=pool.memory, gpu=pool.gpu)
                for pool in self.scenario.nodes for i in range(pool.count)
            ]

    # -- the loop ------------------------------------------------------------------------

    def at(self, t: float, fn: Callable[[], None]) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, fn))

    def run(self, progress: Callable[[World], None] | None = None) -> None:
        """Run the whole scenario: its timeline, expectations and final checks."""
        self.start()
        self.schedule(self.scenario.timeline)
        for expectation in self.scenario.expect:
            self.at(expectation.at, lambda e=expectation: self._expect(e))  # type: ignore[misc]
        self.advance_to(self.scenario.duration, progress)
        self._final_checks()

    def schedule(self, steps: tuple[Step, ...]) -> None:
        """Queue timeline steps at their virtual times."""
        for step in steps:
            self.at(step.at, lambda s=step: self._step(s))  # type: ignore[misc]

    def start(self) -> None:
        """Start the operator installs and the periodic load reports and samples."""
        for spec in self.scenario.operators:
            if spec.installed:
                self._start_operator(spec.name)
        self.at(LOAD_PERIOD, self._load_reports)
        if self.sampling:
            self.at(0.0, self._sample)
        self.flush()

    def advance_to(self, end: float, progress: Callable[[World], None] | None = None) -> None:
        """Run every callback due until `end` (virtual seconds), then stop at `end`."""
        while self.heap and self.heap[0][0] <= end:
            t, _, fn = heapq.heappop(self.heap)
            self.now = max(self.now, t)
            fn()
            self.flush()
            if progress is not None:
                progress(self)
        self.now = max(self.now, end)

    def do(self, kind: str, args: Any) -> None:
        """Apply one timeline step now (`apply`, `workload`, `kill_pod`, ...)."""
        self._step(Step(at=self.now, kind=kind, args=args))
        self.flush()

    def flush(self) -> None:
        busy = True
        while busy:
            busy = False
            for op in list(self.operators.values()):
                if op.inbox:
                    self.events += op.run()
                    busy = True

    # -- operators -----------------------------------------------------------------------

    def _start_operator(self, name: str) -> None:
        self.reported = {k: v for k, v in self.reported.items() if k[0] != name}
        spec = next(o for o in self.scenario.operators if o.name == name)
        install = claims.Install(name=name, rank=spec.scope_value.rank,
                                 lease_seconds=self.lease_seconds,
                                 renew_seconds=self.lease_seconds / 3,
                                 instance=f"{self.now:013.3f}/{name}")  # later starts sort later
        client = Client(self.api, name=name, landed=self._landed)
        self.clients.append(client)
        op = Operator(name=name, api=client, scope=spec.scope_value,
                      state=st.initial(install=install),
                      log=self._log_for(name), requeue=self._requeue_for(name),
                      trace=self._trace, clock=lambda: self.now)
        if spec.qps is not None:
            op.budget = Budget(qps=spec.qps, burst=spec.burst)
            op.resume = self._resume_for(op)
        if self.trace_out is not None:
            self._write({"t": self.now, "kind": "restart", "operator": name, "cluster": None,
                         "type": "OperatorStarted", "install": attrs.asdict(install)})
        self.operators[name] = op
        self._relist(op)

    def _relist(self, op: Operator) -> None:
        """List everything in scope through the operator's client, then mark it synced; a
        failed list (an injected fault) is retried a second later, as a client would."""
        client = op.api
        assert isinstance(client, Client)
        try:
            lists = [(resource, client.list(resource, None, WATCHED[resource])[0])
                     for resource in WATCHED]
        except ApiError:
            self.at(self.now + 1.0, lambda: self._relist(op) if self.operators.get(
                op.name) is op else None)
            return
        op.relist(dict(lists), self.now)
        if not op.state.synced:
            op.synced(self.now)

    def _log_for(self, name: str) -> Callable[[str], None]:
        def write(line: str) -> None:
            self.log(f"[{name}] {line}")
            if self.log_to is not None:
                self.log_to(name, line)
        return write

    def _once(self, key: tuple[str, str, float], fn: Callable[[], None]) -> None:
        """Call `fn` at time key[2], once however often it is asked for."""
        if key in self.requeues:
            return
        self.requeues.add(key)

        def fire() -> None:
            self.requeues.discard(key)
            fn()
        self.at(max(key[2], self.now), fire)

    def _requeue_for(self, name: str) -> Callable[[float], None]:
        """An engine timer: a Tick for operator `name` (whichever instance runs then)."""
        def tick() -> None:
            op = self.operators.get(name)
            if op is not None:
                op.tick(self.now)
        return lambda t: self._once(("tick", name, t), tick)

    def _resume_for(self, op: Operator) -> Callable[[float], None]:
        """The API budget refills: run this operator instance again, if it still runs."""
        def resume() -> None:
            if self.operators.get(op.name) is op:
                self.events += op.run()
        return lambda t: self._once(("resume", op.name, t), resume)

    def _trace(self, kind: str, op: Operator, item: Any) -> None:
        if kind == "action":
            self._on_action(op, item)
        elif kind == "write":
            return
        if self.trace_out is None:
            return
        body = codec.event_to_dict(item) if kind == "event" else codec.action_to_dict(item)
        self._write({"t": self.now, "kind": kind, "operator": op.name,
                     "cluster": body.get("cluster"), **body})

    def _write(self, line: dict[str, Any]) -> None:
        assert self.trace_out is not None
        self.trace_seq += 1
        line = {"t": line.pop("t"), "seq": self.trace_seq, **line}
        self.trace_out.write(json.dumps(line, sort_keys=False, separators=(",", ":")) + "\n")

    def _on_action(self, op: Operator, action: act.Action) -> None:
        self.actions[type(action).__name__] += 1
        key = action.cluster
        if key != ("", "") and not op.covers(key[0]):
            self.violations.append(f"t={self.now:g}: {op.name} acted on {key[0]}/{key[1]}, "
                                   "outside its scope")
        if isinstance(action, act.CreatePod) and action.role == ev.WORKER:
            since = self.demand_since.pop(key, None)
            if since is not None:
                self.latencies.append(self.now - since)
        if isinstance(action, act.DeletePod) and action.reason == "idle":
            rc = self.ray.get(key)
            node = rc.nodes.get(action.name) if rc else None
            if node is not None and node.running:
                self.violations.append(f"t={self.now:g}: {key[0]}/{key[1]}: worker "
                                       f"{action.name} removed as idle while "
                                       f"{node.running} tasks ran on it")

    def _landed(self, client: Client, verb: str, resource: str, obj: dict[str, Any]) -> None:
        """Every write that reaches a cluster (its pods, Service or status) must come from the
        install its claim names in the API at that moment: otherwise two installs act on one
        cluster, or a stale one acted after a hand-over (the fences failed). Claim writes
        (annotations only) are how installs negotiate and are not acting; a pod or Service
        created for a cluster that is gone is collected at once and reaches nothing."""
        meta = obj["metadata"]
        if resource == "rayclusters":
            if verb == "patch":
                return
            key = (meta["namespace"], meta["name"])
        elif resource in ("pods", "services"):
            owner = (meta.get("labels") or {}).get(LABEL_CLUSTER)
            if not owner or (verb == "create" and meta["uid"] not in self.api.live_uids):
                return
            key = (meta["namespace"], owner)
        else:
            return
        cluster = self.api.objects["rayclusters"].get(key)
        if cluster is None:
            return
        refs = {r.get("uid") for r in meta.get("ownerReferences") or []}
        if resource != "rayclusters" and refs and cluster["metadata"]["uid"] not in refs:
            return  # an object of an earlier cluster of that name
        claim = self._claim_of(key, cluster)
        op = client.name
        if claim is None or claim.install != op:
            holder = f"{claim.install} (epoch {claim.epoch})" if claim else "nobody"
            self.violations.append(f"t={self.now:g}: {op} wrote ({verb} {resource} "
                                   f"{meta['name']}) to {key[0]}/{key[1]} while its claim "
                                   f"names {holder}")
            return
        self._acted(op, key, claim)

    def _claim_of(self, key: ev.ClusterKey, cluster: dict[str, Any]) -> claims.Claim | None:
        """The claim on a RayCluster object, parsed once per resourceVersion."""
        rv = cluster["metadata"].get("resourceVersion")
        found = self.claims_seen.get(key)
        if found is not None and found[0] == rv:
            return found[1]
        try:
            claim = claims.parse(cluster)
        except claims.BadClaim:
            claim = None
        self.claims_seen[key] = (rv, claim)
        return claim

    def _acted(self, op: str, key: ev.ClusterKey, claim: claims.Claim) -> None:
        acted = self.acted.setdefault(key, {})
        for other, epoch in acted.items():
            if other != op and epoch == claim.epoch:
                self.violations.append(f"t={self.now:g}: {key[0]}/{key[1]} acted on by "
                                       f"{other} and {op} in epoch {epoch}")
        acted[op] = claim.epoch

    # -- API notifications: kubelet, Ray, operators ---------------------------------------

    def _on_change(self, resource: str, kind: str, obj: dict[str, Any]) -> None:
        if resource == "rayclusters" and kind == "DELETED":  # a new one starts at epoch 1
            self.acted.pop((obj["metadata"]["namespace"], obj["metadata"]["name"]), None)
        if resource == "pods":
            cluster = self._cluster_of(obj)
            if cluster is not None:
                names = self.cluster_pods.setdefault(cluster, {})
                if kind == "DELETED":
                    names.pop(obj["metadata"]["name"], None)
                else:
                    names[obj["metadata"]["name"]] = None
            if self.kubelet:
                self._kubelet(kind, obj)
        if resource in WATCHED:
            for op in self.operators.values():
                if op.name not in self.cut:
                    op.observe(resource, kind, obj, self.now)

    def _kubelet(self, kind: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        key = (meta["namespace"], meta["name"])
        if kind == "ADDED":
            self.at(self.now, lambda: self._bind(key))
        elif kind == "MODIFIED" and meta.get("deletionTimestamp") and key not in self.stopping:
            self.stopping.add(key)
            self._ray_leave(obj)
            self.at(self.now + TERMINATION_GRACE, lambda: self._stop(key))
        elif kind == "DELETED":
            self.stopping.discard(key)
            self._ray_leave(obj)
            self._unbind(key)

    def _pod(self, key: tuple[str, str]) -> dict[str, Any] | None:
        return self.api.objects["pods"].get(key)

    def _bind(self, key: tuple[str, str]) -> None:
        pod = self._pod(key)
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            return
        need = self._requests(pod)
        node = self._fit(need)
        if node is None:
            if key not in self.unschedulable:
                self.unschedulable.append(key)
                self.api.patch_status("pods", key[0], key[1], {"conditions": [{
                    "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                    "message": f"0/{len(self.capacity or [])} nodes are available: "
                               "insufficient resources."}]})
            return
        self.bound[key] = (node, need)
        delay = self.scenario.startup_delay + self.scenario.startup_jitter * self.rng.random()
        self.api.patch("pods", key[0], key[1], {"spec": {"nodeName": self._node_name(node)}})
        self.at(self.now + delay, lambda: self._start(key))

    def _requests(self, pod: dict[str, Any]) -> dict[str, float]:
        """What a pod asks the scheduler for. Pods of one template share their spec object,
        so the answer is kept per spec (with the spec itself, so its id cannot be reused)."""
        spec = pod.get("spec") or {}
        found = self.requests_memo.get(id(spec))
        if found is not None and found[0] is spec:
            return found[1]
        need = _parse_requests(pod)
        if len(self.requests_memo) > 10_000:
            self.requests_memo.clear()
        self.requests_memo[id(spec)] = (spec, need)
        return need

    def _node_name(self, index: int) -> str:
        return self.capacity[index].name if self.capacity else f"sim-node-{index}"

    def _fit(self, need: dict[str, float]) -> int | None:
        if self.capacity is None:
            return 0
        for i, node in enumerate(self.capacity):
            if (node.cpu >= need.get("cpu", 0) and node.memory >= need.get("memory", 0)
                    and node.gpu >= need.get("gpu", 0)):
                node.cpu -= need.get("cpu", 0)
                node.memory -= need.get("memory", 0)
                node.gpu -= need.get("gpu", 0)
                return i
        return None

    def _unbind(self, key: tuple[str, str]) -> None:
        if key in self.unschedulable:
            self.unschedulable.remove(key)
        bound = self.bound.pop(key, None)
        if bound is None or self.capacity is None:
            return
        index, need = bound
        node = self.capacity[index]
        node.cpu += need.get("cpu", 0)
        node.memory += need.get("memory", 0)
        node.gpu += need.get("gpu", 0)
        waiting, self.unschedulable = self.unschedulable, []
        for other in waiting:
            self._bind(other)

    def _start(self, key: tuple[str, str]) -> None:
        pod = self._pod(key)
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            return
        self.ips += 1
        ip = f"10.{(self.ips >> 16) & 255}.{(self.ips >> 8) & 255}.{self.ips & 255}"
        started = pod["metadata"]["creationTimestamp"]
        containers = [{"name": c.get("name", ""), "image": str(c.get("image", "")),
                       "imageID": "", "ready": True, "restartCount": 0,
                       "state": {"running": {"startedAt": started}}}
                      for c in (pod.get("spec") or {}).get("containers") or ()
                      if isinstance(c, dict)]
        self.api.patch_status("pods", key[0], key[1], {
            "phase": "Running", "podIP": ip, "startTime": started,
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": containers})
        self.at(self.now + RAY_JOIN_DELAY, lambda: self._ray_join(key))

    def _stop(self, key: tuple[str, str]) -> None:
        pod = self._pod(key)
        if pod is not None:
            self.api.remove("pods", pod)

    # -- Ray -------------------------------------------------------------------------------

    def _cluster_of(self, pod: dict[str, Any]) -> ev.ClusterKey | None:
        labels = pod["metadata"].get("labels") or {}
        name = labels.get(LABEL_CLUSTER)
        return (pod["metadata"]["namespace"], name) if name else None

    def _pods_of(self, cluster: ev.ClusterKey) -> list[tuple[tuple[str, str], dict[str, Any]]]:
        """The pods of one cluster, by name order."""
        store = self.api.objects["pods"]
        out = []
        for name in sorted(self.cluster_pods.get(cluster, ())):
            pod = store.get((cluster[0], name))
            if pod is not None:
                out.append(((cluster[0], name), pod))
        return out

    def _rc(self, key: ev.ClusterKey) -> raymodel.RayCluster:
        rc = self.ray.get(key)
        if rc is None:
            rc = self.ray[key] = raymodel.RayCluster(key=key)
        return rc

    def _ray_join(self, key: tuple[str, str]) -> None:
        pod = self._pod(key)
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            return
        if (pod.get("status") or {}).get("phase") != "Running":
            return
        cluster = self._cluster_of(pod)
        if cluster is None:
            return
        rc = self._rc(cluster)
        role = pod["metadata"]["labels"].get(LABEL_KIND)
        if role == ev.HEAD:
            rc.head_up = True
            rc.join(key[1], pod["status"]["podIP"], raymodel.pod_resources(pod), self.now)
            for other_key, other in self._pods_of(cluster):
                if (other_key != key
                        and (other.get("status") or {}).get("phase") == "Running"
                        and not other["metadata"].get("deletionTimestamp")):
                    rc.join(other_key[1], other["status"]["podIP"],
                            raymodel.pod_resources(other), self.now)
        elif rc.head_up:
            rc.join(key[1], pod["status"]["podIP"], raymodel.pod_resources(pod), self.now)
        self._place(rc)

    def _ray_leave(self, pod: dict[str, Any]) -> None:
        cluster = self._cluster_of(pod)
        if cluster is None or cluster not in self.ray:
            return
        rc = self.ray[cluster]
        name = pod["metadata"]["name"]
        if name not in rc.nodes:
            return
        if pod["metadata"]["labels"].get(LABEL_KIND) == ev.HEAD:
            rc.head_up = False
            for node in list(rc.nodes):
                rc.leave(node, self.now)
        else:
            rc.leave(name, self.now)
            self._place(rc)

    def _place(self, rc: raymodel.RayCluster) -> None:
        for placement in rc.schedule(self.now):
            self.at(placement.ends, lambda p=placement, r=rc: self._finish(r, p))  # type: ignore[misc]

    def _finish(self, rc: raymodel.RayCluster, placement: raymodel.Placement) -> None:
        rc.finish(placement, self.now)
        self._place(rc)

    def _load_reports(self) -> None:
        """Every 5 s each operator covering a cluster gets its load: complete the first
        time, then only what changed since its previous report."""
        for key, rc in sorted(self.ray.items()):
            if not rc.head_up:
                continue
            for op in self.operators.values():
                if op.covers(key[0]):
                    known = self.reported.get((op.name, key))
                    report, versions = rc.report(self.now, known)
                    self.reported[(op.name, key)] = versions
                    op.inbox.append(report)
        self.at(self.now + LOAD_PERIOD, self._load_reports)

    # -- timeline ---------------------------------------------------------------------------

    def _step(self, step: Step) -> None:
        handler = getattr(self, f"_do_{step.kind}")
        handler(step.args)

    def namespace(self, name: str) -> None:
        """Create namespace `name` unless it exists (as an admin does before applying into
        it: the API refuses objects in a namespace that does not exist)."""
        if ("", name) not in self.api.objects["namespaces"]:
            self.api.create("namespaces", "", {"apiVersion": "v1", "kind": "Namespace",
                                               "metadata": {"name": name},
                                               "status": {"phase": "Active"}})

    def _do_apply(self, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        ns, name = meta["namespace"], meta["name"]
        try:
            old = self.api.get("rayclusters", ns, name)
        except ApiError:
            self.namespace(ns)
            self.api.create("rayclusters", ns, obj)
            return
        body = {**old, "spec": obj["spec"],
                "metadata": {**old["metadata"], "labels": meta.get("labels") or {}}}
        self.api.replace("rayclusters", ns, name, body)

    def _do_delete(self, args: dict[str, Any]) -> None:
        ns, name = args["cluster"].split("/")
        with contextlib.suppress(ApiError):
            self.api.delete("rayclusters", ns, name)

    def _do_workload(self, args: dict[str, Any]) -> None:
        key = _key(args["cluster"])
        rc = self._rc(key)
        for task in args["tasks"]:
            rc.submit(task["resources"], task["count"], task["duration"], self.now)
        self.demand_since.setdefault(key, self.now)
        self._place(rc)

    def _do_request_resources(self, args: dict[str, Any]) -> None:
        self._rc(_key(args["cluster"])).requests = list(args["bundles"])

    def _pick(self, args: dict[str, Any]) -> tuple[str, str] | None:
        ns, name = args["cluster"].split("/")
        candidates = [
            key for key, pod in self._pods_of((ns, name))
            if pod["metadata"]["labels"].get(LABEL_KIND) == args["role"]
            and (args.get("type") is None
                 or pod["metadata"]["labels"].get(LABEL_TYPE) == args["type"])
            and not pod["metadata"].get("deletionTimestamp")
        ]
        return candidates[0] if candidates else None

    def _do_kill_pod(self, args: dict[str, Any]) -> None:
        key = self._pick(args)
        if key is not None:
            self.api.delete("pods", key[0], key[1])

    def _do_fail_pod(self, args: dict[str, Any]) -> None:
        key = self._pick(args)
        if key is not None:
            pod = self.api.patch_status("pods", key[0], key[1], {"phase": "Failed"})
            self._ray_leave(pod)

    def _do_restart_operator(self, name: str) -> None:
        self.operators.pop(name, None)
        self._start_operator(name)

    def _do_install_operator(self, name: str) -> None:
        if name not in self.operators:
            self._start_operator(name)

    def _do_crash_operator(self, name: str) -> None:
        """The install stops without a word: its leases expire, then others take over."""
        self.operators.pop(name, None)

    def _do_uninstall_operator(self, name: str) -> None:
        """`helm uninstall`: the process stops on SIGTERM and deletes its leases, so the
        remaining installs take its clusters over at once (no lease expiry to wait for)."""
        op = self.operators.pop(name, None)
        if op is None:
            return
        for (ns, lease), obj in sorted(self.api.objects["leases"].items()):
            if (obj["metadata"].get("labels") or {}).get(claims.LEASE_LABEL) == name:
                with contextlib.suppress(ApiError):
                    op.api.delete("leases", ns, lease)  # the stopping process, its client

    def _do_watch_cut(self, args: dict[str, Any]) -> None:
        """The operator's watches drop for a while; it misses every change, then resumes
        from a resourceVersion the API no longer has (410 Gone) and must relist."""
        name = args["operator"]
        self.cut[name] = self.now + args["duration"]

        def heal() -> None:
            self.cut.pop(name, None)
            op = self.operators.get(name)
            if op is not None:
                if self.trace_out is not None:
                    self._write({"t": self.now, "kind": "fault", "operator": name,
                                 "cluster": None, "type": "WatchExpired410"})
                self._relist(op)
        self.at(self.now + args["duration"], heal)

    def _do_api_faults(self, args: dict[str, Any]) -> None:
        self.api.faults.append(Fault(verb=args["verb"], resource=args["resource"],
                                     status=args["status"], count=args["count"],
                                     client=args.get("operator") or ""))

    # -- checks ---------------------------------------------------------------------------

    def observe_cluster(self, cluster: str) -> dict[str, Any]:
        ns, name = cluster.split("/")
        pods = [p for _, p in self._pods_of((ns, name))
                if not p["metadata"].get("deletionTimestamp")
                and (p.get("status") or {}).get("phase") in ("Pending", "Running")]
        workers: Counter[str] = Counter(
            p["metadata"]["labels"].get(LABEL_TYPE, "")
            for p in pods if p["metadata"]["labels"].get(LABEL_KIND) == ev.WORKER)
        rc = self.api.objects["rayclusters"].get((ns, name))
        status = (rc or {}).get("status") or {}
        services = sum(1 for (sns, _), s in self.api.objects["services"].items()
                       if sns == ns and (s["metadata"].get("labels") or {}).get(
                           LABEL_CLUSTER) == name)
        claim = self._claim_of((ns, name), rc) if rc is not None else None
        return {"exists": rc is not None, "phase": status.get("phase", ""),
                "managedBy": claim.install if claim is not None else "",
                "restarts": status.get("autoscalerRetries", 0), "pods": len(pods),
                "workers": dict(sorted(workers.items())), "services": services}

    def _expect(self, expectation: Expectation) -> None:
        seen = self.observe_cluster(expectation.cluster)
        for check, expected in expectation.checks.items():
            actual = seen[check]
            if check == "workers":
                actual = {t: seen["workers"].get(t, 0) for t in expected}
            ok = actual == expected
            self.results.append({"at": expectation.at, "cluster": expectation.cluster,
                                 "check": check, "expected": expected, "actual": actual,
                                 "ok": ok})
            if self.trace_out is not None:
                self._write({"t": self.now, "kind": "expect", "operator": None,
                             "cluster": expectation.cluster, "type": "Expectation",
                             "check": check, "expected": expected, "actual": actual, "ok": ok})

    def _sample(self) -> None:
        for (ns, name), obj in sorted(self.api.objects["rayclusters"].items()):
            seen = self.observe_cluster(f"{ns}/{name}")
            desired = sum(((obj.get("status") or {}).get("desiredWorkers") or {}).values())
            self.series.append((self.now, f"{ns}/{name}", sum(seen["workers"].values()),
                                desired))
        self.at(self.now + SAMPLE_PERIOD, self._sample)

    def _final_checks(self) -> None:
        self._ownership_checks()
        self._bounds_checks()

    def _ownership_checks(self) -> None:
        self.violations.extend(f"end: {v}" for v in self.ownership_violations())

    def managers(self) -> dict[str, list[str]]:
        """Who manages each cluster now (see `_acting`), as `ns/name` -> installs."""
        return {f"{ns}/{name}": names
                for (ns, name), names in self._acting(list(self.api.objects["rayclusters"]))
                .items()}

    def ownership_violations(self) -> list[str]:
        """The management graph (engine.ownership) of what is there now and who acted, as
        if claims had settled."""
        clusters = list(self.api.objects["rayclusters"])
        pods = [(ns, name, (pod["metadata"].get("labels") or {}).get(LABEL_CLUSTER))
                for (ns, name), pod in self.api.objects["pods"].items()]
        graph = ownership.build(
            installs={name: op.scope for name, op in self.operators.items()},
            clusters=clusters,
            pods=[(ns, name, owner) for ns, name, owner in pods if owner],
            acting=self._acting(clusters),
        )
        return ownership.violations(graph, settled=True)

    def _acting(self, clusters: list[ev.ClusterKey]) -> dict[ev.ClusterKey, list[str]]:
        """Who acts on each cluster now: the running installs that wrote to it in the epoch
        of its current claim (an install that acted in an earlier epoch handed over)."""
        out: dict[ev.ClusterKey, list[str]] = {}
        for key in clusters:
            claim = self._claim_of(key, self.api.objects["rayclusters"][key])
            acted = self.acted.get(key, {})
            out[key] = sorted(
                name for name, epoch in acted.items()
                if name in self.operators and claim is not None and epoch == claim.epoch)
            if claim is not None and claim.install in self.operators and (
                    claim.install not in out[key]):
                out[key].append(claim.install)  # holds it, nothing to write yet
        return out

    def _bounds_checks(self) -> None:
        for (ns, name), obj in sorted(self.api.objects["rayclusters"].items()):
            spec = obj.get("spec") or {}
            seen = self.observe_cluster(f"{ns}/{name}")
            for pod_type in spec.get("podTypes") or []:
                top = pod_type.get("maxWorkers")
                have = seen["workers"].get(pod_type.get("name"), 0)
                if isinstance(top, int) and have > top:
                    self.violations.append(f"end: {ns}/{name}: {have} live workers of type "
                                           f"{pod_type.get('name')} above maxWorkers {top}")
        for (ns, pod_name), pod in sorted(self.api.objects["pods"].items()):
            cluster = (pod["metadata"].get("labels") or {}).get(LABEL_CLUSTER)
            if cluster and (ns, cluster) not in self.api.objects["rayclusters"] and not pod[
                    "metadata"].get("deletionTimestamp"):
                self.violations.append(f"end: pod {ns}/{pod_name} belongs to no live cluster")


def tune_gc() -> None:
    """Collect the young generation every 100,000 allocations instead of 700.

    A simulation allocates millions of short-lived, acyclic dicts (API objects, events); with
    the default threshold the collector's full passes grow with the heap and took about a
    fifth of a 100k-pod run. Memory stays bounded: garbage without cycles is still freed at
    once by reference counting. Called by the command line and the benchmarks (a process
    policy, not a library side effect)."""
    gc.set_threshold(100_000, 50, 100)


def _key(text: str) -> ev.ClusterKey:
    ns, name = text.split("/")
    return (ns, name)


def _parse_requests(pod: dict[str, Any]) -> dict[str, float]:
    from engine import quantities

    need: dict[str, float] = {}
    for c in (pod.get("spec") or {}).get("containers") or []:
        res = (c.get("resources") or {}).get("requests") or {}
        for key, out in (("cpu", "cpu"), ("memory", "memory"), ("nvidia.com/gpu", "gpu")):
            if key in res:
                with contextlib.suppress(quantities.QuantityError):
                    need[out] = need.get(out, 0.0) + float(quantities.parse(res[key]))
    return need
