"""The simulated world: Kubernetes API, kubelet, Ray and operator installs in virtual time.

A discrete-event loop (a heap of timed callbacks) drives everything; nothing reads the wall
clock and every random draw comes from one generator seeded by the scenario, so the same
scenario and seed give the same run, byte for byte (the trace proves it). After each
callback the operators drain their inboxes: the API's watch notifications reach every
operator whose scope covers the object, exactly as a watch would deliver them.

This module is the loop and the operator installs; the roles live beside it: the kubelet and
scheduler in `sim.nodes`, Ray and its load reports in `sim.raylink` (over the model of
`sim.ray`), the checks in `sim.invariants`, the scenario's steps in `sim.timeline` and the
run's story in `sim.story`.
"""

from __future__ import annotations

import functools
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
from engine import claims, codec
from engine import events as ev
from engine import state as st
from sim import invariants, nodes, raylink, story, timeline
from sim import ray as raymodel
from sim.api import Api, Client
from sim.scenario import Scenario
from sim.timeline import Step


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
    capacity: list[nodes.Capacity] | None = None
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
    decided: list[tuple[float, str, int]] = field(factory=list)  # desired per status write
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
    story: list[story.Line] = field(factory=list)  # what happened, in order (sim.story)
    untold: int = 0  # story lines past its limit
    told: dict[str, tuple[str, int]] = field(factory=dict)  # cluster -> (phase, desired) told

    def __attrs_post_init__(self) -> None:
        self.api = Api(now=lambda: self.now)
        self.api.watchers.append(self._on_change)
        self.rng = random.Random(self.scenario.seed)
        if self.scenario.nodes:
            self.capacity = [
                nodes.Capacity(name=f"{pool.name}-{i}", cpu=pool.cpu, memory=pool.memory,
                               gpu=pool.gpu)
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
        for i, expectation in enumerate(self.scenario.expect):
            self.at(expectation.at, lambda e=expectation, i=i: invariants.expect(self, e, i))  # type: ignore[misc]
        self.advance_to(self.scenario.duration, progress)
        invariants.final_checks(self)

    def schedule(self, steps: tuple[Step, ...]) -> None:
        """Queue timeline steps at their virtual times."""
        for step in steps:
            self.at(step.at, lambda s=step: timeline.run(self, s))  # type: ignore[misc]

    def start(self) -> None:
        """Start the operator installs and the periodic load reports and samples."""
        for spec in self.scenario.operators:
            if spec.installed:
                self.start_operator(spec.name)
        self.at(raylink.LOAD_PERIOD, functools.partial(raylink.load_reports, self))
        if self.sampling:
            self.at(0.0, functools.partial(invariants.sample, self))
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
        """Apply one timeline step now (a kind of `sim.timeline.STEPS`: `apply`, `workload`,
        `killPod`, ...; its arguments as the scenario parser returns them)."""
        timeline.run(self, Step(at=self.now, kind=timeline.canonical(kind)[0], args=args))
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

    def start_operator(self, name: str) -> None:
        self.reported = {k: v for k, v in self.reported.items() if k[0] != name}
        spec = next(o for o in self.scenario.operators if o.name == name)
        install = claims.Install(name=name, rank=spec.scope_value.rank,
                                 lease_seconds=self.lease_seconds,
                                 renew_seconds=self.lease_seconds / 3,
                                 instance=f"{self.now:013.3f}/{name}")  # later starts sort later
        client = Client(self.api, name=name, landed=functools.partial(invariants.landed, self))
        self.clients.append(client)
        op = Operator(name=name, api=client, scope=spec.scope_value,
                      state=st.initial(install=install),
                      log=self._log_for(name), requeue=self._requeue_for(name),
                      trace=self._trace, clock=lambda: self.now,
                      budget=Budget(qps=spec.qps, burst=spec.burst) if spec.qps else None,
                      resume=self._resume_for(name, install.instance),
                      ray=raylink.Drains(self) if self.kubelet else None)
        if self.trace_out is not None:
            self.write({"t": self.now, "kind": "restart", "operator": name, "cluster": None,
                        "type": "OperatorStarted", "install": attrs.asdict(install)})
        self.operators[name] = op
        self.relist(op)

    def relist(self, op: Operator) -> None:
        """List everything in scope through the operator's client, then mark it synced; a
        failed list (an injected fault) is retried a second later, as a client would."""
        client = op.api
        assert isinstance(client, Client)
        try:
            lists = [(resource, client.list(resource, None, WATCHED[resource])[0])
                     for resource in WATCHED]
        except ApiError:
            self.at(self.now + 1.0, lambda: self.relist(op) if self.operators.get(
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

    def _resume_for(self, name: str, instance: str) -> Callable[[float], None]:
        """The API budget refills: run the operator `name` again, if the same process
        (`instance`) still runs (a restarted one has a budget of its own)."""
        def resume() -> None:
            op = self.operators.get(name)
            if op is not None and op.state.install is not None \
                    and op.state.install.instance == instance:
                self.events += op.run()
        return lambda t: self._once(("resume", name, t), resume)

    def _trace(self, kind: str, op: Operator, item: Any) -> None:
        if kind == "action":
            invariants.on_action(self, op, item)
        elif kind == "write":
            return
        if self.trace_out is None:
            return
        body = codec.event_to_dict(item) if kind == "event" else codec.action_to_dict(item)
        self.write({"t": self.now, "kind": kind, "operator": op.name,
                    "cluster": body.get("cluster"), **body})

    def write(self, line: dict[str, Any]) -> None:
        assert self.trace_out is not None
        self.trace_seq += 1
        line = {"t": line.pop("t"), "seq": self.trace_seq, **line}
        self.trace_out.write(json.dumps(line, sort_keys=False, separators=(",", ":")) + "\n")


    # -- API notifications: kubelet, Ray, operators ---------------------------------------

    def _on_change(self, resource: str, kind: str, obj: dict[str, Any]) -> None:
        if resource == "rayclusters" and kind == "DELETED":  # a new one starts at epoch 1
            self.acted.pop((obj["metadata"]["namespace"], obj["metadata"]["name"]), None)
        if resource == "pods":
            cluster = raylink.cluster_of(self, obj)
            if cluster is not None:
                names = self.cluster_pods.setdefault(cluster, {})
                if kind == "DELETED":
                    names.pop(obj["metadata"]["name"], None)
                else:
                    names[obj["metadata"]["name"]] = None
            if self.kubelet:
                nodes.kubelet(self, kind, obj)
        if resource in WATCHED:
            for op in self.operators.values():
                if op.name not in self.cut:
                    op.observe(resource, kind, obj, self.now)


    # -- Ray -------------------------------------------------------------------------------


    # -- timeline ---------------------------------------------------------------------------


    def namespace(self, name: str) -> None:
        """Create namespace `name` unless it exists (as an admin does before applying into
        it: the API refuses objects in a namespace that does not exist)."""
        if ("", name) not in self.api.objects["namespaces"]:
            self.api.create("namespaces", "", {"apiVersion": "v1", "kind": "Namespace",
                                               "metadata": {"name": name},
                                               "status": {"phase": "Active"}})


    # -- checks ---------------------------------------------------------------------------


def tune_gc() -> None:
    """Collect the young generation every 100,000 allocations instead of 700.

    A simulation allocates millions of short-lived, acyclic dicts (API objects, events); with
    the default threshold the collector's full passes grow with the heap and took about a
    fifth of a 100k-pod run. Memory stays bounded: garbage without cycles is still freed at
    once by reference counting. Called by the command line and the benchmarks (a process
    policy, not a library side effect)."""
    gc.set_threshold(100_000, 50, 100)


