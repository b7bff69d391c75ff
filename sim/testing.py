"""A Hypothesis state machine over the simulated world, importable by any test suite.

Like `zarr.testing.stateful`, it takes the system under test as it is (the whole world:
API, kubelet, Ray, operator installs) and drives it with random timelines: RayClusters are
applied, edited and deleted across namespaces; workloads arrive; heads and workers die; API
calls fail; the operator restarts; time passes. After every step the invariants hold; a
`settle` step lets time pass with no new input and then checks every cluster's workers are
within [minWorkers, maxWorkers]; at the end the recorded trace must replay identically.
"""

from __future__ import annotations

import io

from hypothesis import note
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    precondition,
    rule,
)

from engine.labels import LABEL_CLUSTER
from sim import invariants, report
from sim.clusters import cluster_object
from sim.scenario import OperatorSpec, Scenario
from sim.world import World

NAMESPACES = ("ray", "team-a")
NAMES = ("alpha", "beta", "gamma")


class WorldMachine(RuleBasedStateMachine):
    clusters = Bundle("clusters")

    @initialize(seed=st.integers(0, 2**16))
    def start(self, seed: int) -> None:
        scenario = Scenario(
            name="stateful", source="(hypothesis)", description="", seed=seed,
            duration=10**9, nodes=(), startup_delay=2.0, startup_jitter=3.0,
            operators=(OperatorSpec(name="ray-operator", namespace="default", scope="cluster"),),
            timeline=(), expect=(),
        )
        self.trace = io.StringIO()
        self.world = World(scenario=scenario, trace_out=self.trace)
        self.world.start()
        self.bounds: dict[str, tuple[int, int]] = {}
        self.faulty = False

    def advance(self, seconds: float) -> None:
        self.world.advance_to(self.world.now + seconds)

    @rule(target=clusters, namespace=st.sampled_from(NAMESPACES), name=st.sampled_from(NAMES),
          low=st.integers(0, 3), extra=st.integers(0, 3))
    def apply(self, namespace: str, name: str, low: int, extra: int) -> str:
        key = f"{namespace}/{name}"
        note(f"apply {key} min {low} max {low + extra}")
        self.world.do("apply", cluster_object(namespace, name, low, low + extra))
        self.bounds[key] = (low, low + extra)
        return key

    @rule(cluster=clusters, low=st.integers(0, 3), extra=st.integers(0, 3))
    def edit(self, cluster: str, low: int, extra: int) -> None:
        if cluster not in self.bounds:
            return
        namespace, name = cluster.split("/")
        note(f"edit {cluster} min {low} max {low + extra}")
        self.world.do("apply", cluster_object(namespace, name, low, low + extra))
        self.bounds[cluster] = (low, low + extra)

    @rule(cluster=consumes(clusters))
    def delete(self, cluster: str) -> None:
        note(f"delete {cluster}")
        self.world.do("delete", {"cluster": cluster})
        self.bounds.pop(cluster, None)

    @rule(cluster=clusters, count=st.integers(1, 8), duration=st.sampled_from([10.0, 60.0]))
    def workload(self, cluster: str, count: int, duration: float) -> None:
        if cluster in self.bounds:
            note(f"workload {cluster} {count} x CPU 1 for {duration} s")
            self.world.do("workload", {"cluster": cluster, "tasks": [
                {"resources": {"CPU": 1.0}, "count": count, "duration": duration}]})

    @rule(cluster=clusters, role=st.sampled_from(["head", "worker"]))
    def kill(self, cluster: str, role: str) -> None:
        if cluster in self.bounds:
            note(f"kill a {role} of {cluster}")
            self.world.do("killPod", {"cluster": cluster, "role": role, "type": None})

    @rule()
    def restart_operator(self) -> None:
        note("restart the operator")
        self.world.do("restartOperator", "ray-operator")

    @rule(verb=st.sampled_from(["create", "delete", "patch_status"]),
          status=st.sampled_from([0, 409, 429, 500]), count=st.integers(1, 3))
    def api_fault(self, verb: str, status: int, count: int) -> None:
        resource = "rayclusters" if verb == "patch_status" else "pods"
        note(f"fail the next {count} {verb} {resource} with {status}")
        self.world.do("apiFaults", {"verb": verb, "resource": resource, "status": status,
                                    "count": count})

    @rule(duration=st.sampled_from([5.0, 30.0, 90.0]))
    def watch_cut(self, duration: float) -> None:
        note(f"the operator's watches drop for {duration} s, then 410 and relist")
        self.world.do("watchCut", {"operator": "ray-operator", "duration": duration})

    @rule(seconds=st.sampled_from([1.0, 5.0, 20.0, 60.0]))
    def wait(self, seconds: float) -> None:
        self.advance(seconds)

    @precondition(lambda self: bool(self.bounds))
    @rule()
    def settle(self) -> None:
        """No new input for 10 minutes (past any backoff and idle timeout), then check."""
        self.advance(600.0)
        for cluster, (low, high) in sorted(self.bounds.items()):
            seen = invariants.observe_cluster(self.world, cluster)
            workers = seen["workers"].get("worker", 0)
            note(f"{cluster}: {seen}")
            assert low <= workers <= high, f"{cluster}: {workers} workers, bounds [{low}, {high}]"
            assert seen["phase"] == "Running", f"{cluster} is {seen['phase']!r} after settling"

    @invariant()
    def no_violation(self) -> None:
        assert self.world.violations == []

    @invariant()
    def every_pod_belongs_to_a_live_cluster_or_is_going(self) -> None:
        api = self.world.api
        for (ns, name), pod in api.objects["pods"].items():
            owner = (pod["metadata"].get("labels") or {}).get(LABEL_CLUSTER)
            assert owner is None or (ns, owner) in api.objects["rayclusters"] or pod[
                "metadata"].get("deletionTimestamp"), f"pod {ns}/{name} outlived its cluster"

    def teardown(self) -> None:
        if not hasattr(self, "trace"):
            return
        ok, message, _ = report.replay(io.StringIO(self.trace.getvalue()))
        assert ok, message



INSTALLS = (
    OperatorSpec(name="wide", namespace="default", scope="cluster", installed=False),
    OperatorSpec(name="wide-2", namespace="ops", scope="cluster", installed=False),
    OperatorSpec(name="ray-only", namespace="ray", scope="namespace", installed=False),
    OperatorSpec(name="team-only", namespace="team-a", scope="namespace", installed=False),
    OperatorSpec(name="both", namespace="ops", scope="namespaces", namespaces=NAMESPACES,
                 installed=False),
)
SETTLE_SECONDS = 120.0  # past a lease expiry (15 s) and a few renewals


class InstallsMachine(RuleBasedStateMachine):
    """Operator installs with random scopes come and go over clusters in random namespaces.

    After every step no write reached a cluster from an install its claim did not name in
    that epoch, and no install acted outside its scope (the world's violations); after
    `settle`, every cluster inside some running install's scope is managed by exactly one
    install, one of the narrowest that cover it (engine.ownership).
    """

    clusters = Bundle("clusters")

    @initialize(seed=st.integers(0, 2**16), first=st.sampled_from(INSTALLS))
    def start(self, seed: int, first: OperatorSpec) -> None:
        scenario = Scenario(
            name="installs", source="(hypothesis)", description="", seed=seed,
            duration=10**9, nodes=(), startup_delay=2.0, startup_jitter=3.0,
            operators=INSTALLS, timeline=(), expect=(),
        )
        self.trace = io.StringIO()
        self.world = World(scenario=scenario, trace_out=self.trace)
        self.world.start()
        self.world.do("installOperator", first.name)
        self.live: set[str] = set()

    @rule(target=clusters, namespace=st.sampled_from(NAMESPACES), name=st.sampled_from(NAMES),
          high=st.integers(1, 3))
    def apply(self, namespace: str, name: str, high: int) -> str:
        key = f"{namespace}/{name}"
        note(f"apply {key} min 1 max {high}")
        self.world.do("apply", cluster_object(namespace, name, 1, high))
        self.live.add(key)
        return key

    @rule(cluster=consumes(clusters))
    def delete(self, cluster: str) -> None:
        note(f"delete {cluster}")
        self.world.do("delete", {"cluster": cluster})
        self.live.discard(cluster)

    @rule(spec=st.sampled_from(INSTALLS))
    def install(self, spec: OperatorSpec) -> None:
        note(f"install {spec.name} ({spec.scope_value})")
        self.world.do("installOperator", spec.name)

    @rule(spec=st.sampled_from(INSTALLS))
    def uninstall(self, spec: OperatorSpec) -> None:
        note(f"uninstall {spec.name}")
        self.world.do("uninstallOperator", spec.name)

    @rule(spec=st.sampled_from(INSTALLS))
    def crash(self, spec: OperatorSpec) -> None:
        note(f"crash {spec.name} (its leases expire)")
        self.world.do("crashOperator", spec.name)

    @rule(spec=st.sampled_from(INSTALLS))
    def restart(self, spec: OperatorSpec) -> None:
        if spec.name in self.world.operators:
            note(f"restart {spec.name}")
            self.world.do("restartOperator", spec.name)

    @rule(spec=st.sampled_from(INSTALLS), duration=st.sampled_from([5.0, 30.0]))
    def watch_cut(self, spec: OperatorSpec, duration: float) -> None:
        if spec.name in self.world.operators:
            note(f"{spec.name}'s watches drop for {duration} s")
            self.world.do("watchCut", {"operator": spec.name, "duration": duration})

    @rule(spec=st.sampled_from(INSTALLS), count=st.integers(1, 12))
    def lease_faults(self, spec: OperatorSpec, count: int) -> None:
        """Only this install's lease renewals fail (its other calls go through): it must
        stop acting before its peers may take its clusters over."""
        note(f"the next {count} lease renewals of {spec.name} fail")
        self.world.do("apiFaults", {"verb": "patch", "resource": "leases", "status": 500,
                                    "count": count, "operator": spec.name})

    @rule(seconds=st.sampled_from([1.0, 5.0, 12.0, 20.0]))
    def wait(self, seconds: float) -> None:
        self.world.advance_to(self.world.now + seconds)

    @rule()
    def settle(self) -> None:
        """The world heals (injected API faults not yet used are dropped: enough of them
        would keep any install from renewing its lease for longer than any settle), then
        time passes and ownership must have converged."""
        self.world.api.faults.clear()
        self.world.advance_to(self.world.now + SETTLE_SECONDS)
        self.world.cut.clear()
        found = invariants.ownership_violations(self.world)
        note(f"managers: {invariants.managers(self.world)}")
        assert found == [], found

    @invariant()
    def no_violation(self) -> None:
        assert self.world.violations == []

    def teardown(self) -> None:
        if not hasattr(self, "trace"):
            return
        ok, message, _ = report.replay(io.StringIO(self.trace.getvalue()))
        assert ok, message
