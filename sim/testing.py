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

from engine import manifests
from sim import report
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
            self.world.do("kill_pod", {"cluster": cluster, "role": role, "type": None})

    @rule()
    def restart_operator(self) -> None:
        note("restart the operator")
        self.world.do("restart_operator", "ray-operator")

    @rule(verb=st.sampled_from(["create", "delete", "patch_status"]),
          status=st.sampled_from([0, 409, 429, 500]), count=st.integers(1, 3))
    def api_fault(self, verb: str, status: int, count: int) -> None:
        resource = "rayclusters" if verb == "patch_status" else "pods"
        note(f"fail the next {count} {verb} {resource} with {status}")
        self.world.do("api_faults", {"verb": verb, "resource": resource, "status": status,
                                     "count": count})

    @rule(duration=st.sampled_from([5.0, 30.0, 90.0]))
    def watch_cut(self, duration: float) -> None:
        note(f"the operator's watches drop for {duration} s, then 410 and relist")
        self.world.do("watch_cut", {"operator": "ray-operator", "duration": duration})

    @rule(seconds=st.sampled_from([1.0, 5.0, 20.0, 60.0]))
    def wait(self, seconds: float) -> None:
        self.advance(seconds)

    @precondition(lambda self: bool(self.bounds))
    @rule()
    def settle(self) -> None:
        """No new input for 10 minutes (past any backoff and idle timeout), then check."""
        self.advance(600.0)
        for cluster, (low, high) in sorted(self.bounds.items()):
            seen = self.world.observe_cluster(cluster)
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
            owner = (pod["metadata"].get("labels") or {}).get(manifests.LABEL_CLUSTER)
            assert owner is None or (ns, owner) in api.objects["rayclusters"] or pod[
                "metadata"].get("deletionTimestamp"), f"pod {ns}/{name} outlived its cluster"

    def teardown(self) -> None:
        if not hasattr(self, "trace"):
            return
        ok, message, _ = report.replay(io.StringIO(self.trace.getvalue()))
        assert ok, message

