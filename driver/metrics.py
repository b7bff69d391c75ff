"""The operator's Prometheus metrics, one registry per install.

A registry per `Operator` (not the process-global default) keeps installs in one process,
as the simulator runs them, from mixing their counts; the live process serves its install's
registry on `/metrics`. Names follow Prometheus conventions (`_total` counters, seconds).

Counters are bumped where things happen (the loop, the executor, the API client). What
describes the present (clusters by phase, desired and live workers of each cluster and pod
type) is read from the engine's state when scraped, by a collector: nothing is kept twice
and nothing costs anything between scrapes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from attrs import define, field
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from engine import actions as act
from engine import state as st
from engine import status
from engine.phases import Phase

API_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class StateCollector(Collector):
    """Gauges read from the engine's current state at scrape time (the serving thread reads
    while the loop thread folds; a dict changed mid-read is read again)."""

    def __init__(self, state: Callable[[], st.State | None]) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        for _ in range(5):
            try:
                yield from self._families()
                return
            except RuntimeError:  # a dict changed size while the loop folded an event
                continue

    def _families(self) -> list[Metric]:
        phases = GaugeMetricFamily("ray_operator_clusters", "Clusters this install manages, "
                                   "by phase.", labels=["phase"])
        desired = GaugeMetricFamily("ray_operator_desired_workers", "Workers the engine wants "
                                    "now (live plus creates in flight).",
                                    labels=["namespace", "cluster", "pod_type"])
        live = GaugeMetricFamily("ray_operator_live_workers", "Live workers (not being "
                                 "deleted).", labels=["namespace", "cluster", "pod_type"])
        waiting = GaugeMetricFamily(
            "ray_operator_pending_demand_bundles", "Bundles Ray asked for that no launch "
            "covers, as the last status says: infeasible (no pod type can hold them) or "
            "held back (a maximum, the upscaling speed or an unavailable type).",
            labels=["namespace", "cluster", "kind"])
        state = self.state()
        counts: dict[str, int] = {p.value: 0 for p in Phase if p is not Phase.NONE}
        for (ns, name), cs in list(state.clusters.items()) if state is not None else ():
            assert state is not None
            if cs.obj is None or not _holds(state, cs):
                continue
            counts[cs.phase.value] = counts.get(cs.phase.value, 0) + 1
            types = sorted({*(cs.spec.pod_types if cs.spec else ()), *cs.live, *cs.inflight})
            for pod_type, n in status.desired_workers(cs, types).items():
                desired.add_metric([ns, name, pod_type], n)
                live.add_metric([ns, name, pod_type], cs.live.get(pod_type, 0))
            note = cs.status_sent.demand if cs.status_sent is not None else None
            if note is not None:
                waiting.add_metric([ns, name, "infeasible"], note.infeasible_count)
                waiting.add_metric([ns, name, "held_back"], note.held_count)
        for phase, n in sorted(counts.items()):
            phases.add_metric([phase], n)
        return [phases, desired, live, waiting]


def _holds(state: st.State, cs: st.ClusterState) -> bool:
    """Whether the cluster's claim names this install (an install-less operator holds all)."""
    me = state.install
    return me is None or (cs.claim is not None and cs.claim.install == me.name)


@define
class Metrics:
    registry: CollectorRegistry = field(factory=CollectorRegistry)
    actions: Counter = field(init=False)
    reconciles: Counter = field(init=False)
    errors: Counter = field(init=False)
    malformed_objects: Counter = field(init=False)
    api_seconds: Histogram = field(init=False)
    conflicts: Counter = field(init=False)
    fenced: Counter = field(init=False)

    def __attrs_post_init__(self) -> None:
        r = self.registry
        self.actions = Counter("ray_operator_actions", "Actions the engine decided, by kind.",
                               ["kind"], registry=r)
        self.reconciles = Counter(
            "ray_operator_reconciles",
            "Engine steps: one observed fact folded and the affected cluster planned.",
            registry=r)
        self.errors = Counter(
            "ray_operator_errors",
            "API calls for an action that failed (the engine retries with backoff), by the "
            "action's kind and the HTTP status (0: no answer).", ["kind", "code"], registry=r)
        self.malformed_objects = Counter(
            "ray_operator_malformed_objects",
            "Watched or listed objects skipped because they could not be read.",
            ["resource"], registry=r)
        self.api_seconds = Histogram(
            "ray_operator_api_request_duration_seconds",
            "Kubernetes API requests by verb, resource and HTTP status (0: no answer).",
            ["verb", "resource", "code"], buckets=API_BUCKETS, registry=r)
        self.conflicts = Counter(
            "ray_operator_ownership_conflicts",
            "Clusters this install found managed by another install it does not outrank.",
            ["namespace", "cluster"], registry=r)
        self.fenced = Counter(
            "ray_operator_fenced_writes",
            "Writes dropped because this install no longer held the cluster's claim.",
            ["namespace", "cluster"], registry=r)

    def watch_state(self, state: Callable[[], st.State | None]) -> None:
        """Serve the gauges of the present from `state()` (called at each scrape)."""
        self.registry.register(StateCollector(state))

    def observe(self, action: act.Action) -> None:
        self.actions.labels(kind=type(action).__name__).inc()
        if isinstance(action, act.EmitEvent) and action.reason == "OwnershipConflict":
            self.conflicts.labels(namespace=action.cluster[0], cluster=action.cluster[1]).inc()

    def failed(self, action: act.Action, code: int) -> None:
        self.errors.labels(kind=type(action).__name__, code=str(code)).inc()

    def malformed(self, resource: str) -> None:
        self.malformed_objects.labels(resource=resource).inc()

    def request(self, verb: str, resource: str, code: int, seconds: float) -> None:
        self.api_seconds.labels(verb=verb, resource=resource, code=str(code)).observe(seconds)

    def value(self, name: str, **labels: str) -> float:
        found = self.registry.get_sample_value(name, labels)
        return 0.0 if found is None else float(found)

    def text(self) -> bytes:
        return generate_latest(self.registry)
