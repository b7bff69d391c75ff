"""The operator's Prometheus metrics, one registry per install.

A registry per `Operator` (not the process-global default) keeps installs in one process,
as the simulator runs them, from mixing their counts; the live process serves its install's
registry on `/metrics` (issue 5). Names follow Prometheus conventions (`_total` counters).
"""

from __future__ import annotations

from attrs import define, field
from prometheus_client import CollectorRegistry, Counter, generate_latest

from engine import actions as act


@define
class Metrics:
    registry: CollectorRegistry = field(factory=CollectorRegistry)
    actions: Counter = field(init=False)
    conflicts: Counter = field(init=False)
    fenced: Counter = field(init=False)

    def __attrs_post_init__(self) -> None:
        self.actions = Counter("ray_operator_actions", "Actions the engine decided, by kind.",
                               ["kind"], registry=self.registry)
        self.conflicts = Counter(
            "ray_operator_ownership_conflicts",
            "Clusters this install found managed by another install it does not outrank.",
            ["namespace", "cluster"], registry=self.registry)
        self.fenced = Counter(
            "ray_operator_fenced_writes",
            "Writes dropped because this install no longer held the cluster's claim.",
            ["namespace", "cluster"], registry=self.registry)

    def observe(self, action: act.Action) -> None:
        self.actions.labels(kind=type(action).__name__).inc()
        if isinstance(action, act.EmitEvent) and action.reason == "OwnershipConflict":
            self.conflicts.labels(namespace=action.cluster[0], cluster=action.cluster[1]).inc()

    def value(self, name: str, **labels: str) -> float:
        found = self.registry.get_sample_value(name, labels)
        return 0.0 if found is None else float(found)

    def text(self) -> bytes:
        return generate_latest(self.registry)
