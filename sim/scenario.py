"""Scenario files (YAML, docs/simulator.md): read strictly, checked fully before anything runs.

A scenario that is wrong anywhere is refused as a whole with one `ScenarioError` naming the
file, the field and what was expected (`validate` and `run` exit 2); nothing runs half-way.
Unknown fields are errors, not silently ignored: a typo in `minWorkers` must not pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from attrs import field, frozen

from engine import scopes
from sim import timeline as timeline_steps
from sim.reading import (
    MAX_COUNT,
    MAX_NODES,
    Reader,
    duration,
    list_of,
    quantity,
    read_text,
    read_yaml,
    show,
)
from sim.reading import ScenarioError as ScenarioError
from sim.timeline import Step


@frozen(kw_only=True)
class NodePool:
    name: str
    cpu: float
    memory: float
    gpu: float
    count: int


@frozen(kw_only=True)
class OperatorSpec:
    name: str
    namespace: str
    scope: str  # cluster | namespace | namespaces
    qps: float | None = None  # API calls per second (None: unlimited)
    burst: int = 10
    namespaces: tuple[str, ...] = ()  # with scope `namespaces`
    installed: bool = True  # running from t=0; else started by an `installOperator` step

    @property
    def scope_value(self) -> scopes.Scope:
        if self.scope == "cluster":
            return scopes.EVERYWHERE
        if self.scope == "namespace":
            return scopes.only([self.namespace])
        return scopes.only(self.namespaces)


@frozen(kw_only=True)
class Expectation:
    at: float
    cluster: str  # ns/name
    checks: Mapping[str, Any] = field(eq=False)


@frozen(kw_only=True)
class Scenario:
    name: str
    source: str
    description: str
    seed: int
    duration: float
    nodes: tuple[NodePool, ...]
    startup_delay: float
    startup_jitter: float
    operators: tuple[OperatorSpec, ...]
    timeline: tuple[Step, ...]
    expect: tuple[Expectation, ...]
    notices: tuple[str, ...] = ()  # deprecated spellings read (the CLI shows them)


def load(path: str | Path) -> Scenario:
    """Read and check a scenario file; raise `ScenarioError` on any problem."""
    source = str(path)
    data = read_yaml(read_text(Path(path), source, "(file)"), source, "(file)")
    return parse(data, source=source, base=Path(path).parent)


def parse(data: object, *, source: str, base: Path) -> Scenario:
    r = Reader(source)
    top = r.mapping(data, "", {"name", "description", "seed", "duration", "cluster",
                               "operators", "timeline", "expect"})
    name = r.string(top.get("name"), "name")
    seed = r.integer(top.get("seed", 0), "seed")
    total = duration(top.get("duration", "600s"), source, "duration")
    cluster = r.mapping(top.get("cluster") or {}, "cluster", {"nodes", "podStartup"})
    nodes = tuple(_node(r, n, f"cluster.nodes[{i}]")
                  for i, n in enumerate(list_of(r, cluster.get("nodes"), "cluster.nodes")))
    startup = r.mapping(cluster.get("podStartup") or {}, "cluster.podStartup", {"delay", "jitter"})
    delay = duration(startup.get("delay", "5s"), source, "cluster.podStartup.delay")
    jitter = duration(startup.get("jitter", "2s"), source, "cluster.podStartup.jitter")
    operators = _operators(r, top.get("operators"))
    notices: list[str] = []
    timeline = tuple(timeline_steps.parse(r, s, f"timeline[{i}]", base, i, notices)
                     for i, s in enumerate(list_of(r, top.get("timeline"), "timeline")))
    expect = tuple(_expect(r, e, f"expect[{i}]")
                   for i, e in enumerate(list_of(r, top.get("expect"), "expect")))
    _check_references(r, timeline, expect, {o.name for o in operators})
    return Scenario(
        name=name, source=source, description=str(top.get("description") or ""), seed=seed,
        duration=total, nodes=nodes, startup_delay=delay, startup_jitter=jitter,
        operators=operators, timeline=tuple(sorted(timeline, key=lambda s: (s.at, s.index))),
        expect=expect, notices=tuple(notices),
    )


def _node(r: Reader, value: object, path: str) -> NodePool:
    n = r.mapping(value, path, {"name", "cpu", "memory", "gpu", "count"})
    return NodePool(
        name=r.string(n.get("name", "node"), f"{path}.name"),
        cpu=quantity(n.get("cpu", 64), r.source, f"{path}.cpu"),
        memory=quantity(n.get("memory", "256Gi"), r.source, f"{path}.memory"),
        gpu=quantity(n.get("gpu", 0), r.source, f"{path}.gpu"),
        count=r.integer(n.get("count", 1), f"{path}.count", minimum=1, maximum=MAX_NODES),
    )


def _operators(r: Reader, value: object) -> tuple[OperatorSpec, ...]:
    if value is None:
        return (OperatorSpec(name="ray-operator", namespace="default", scope="cluster"),)
    out = []
    for i, item in enumerate(list_of(r, value, "operators")):
        path = f"operators[{i}]"
        o = r.mapping(item, path, {"name", "namespace", "scope", "namespaces", "qps", "burst",
                                   "installed"})
        installed = o.get("installed", True)
        if not isinstance(installed, bool):
            raise r.fail(f"{path}.installed", f"expected true or false, got {show(installed)}")
        qps = o.get("qps")
        if qps is not None and (isinstance(qps, bool) or not isinstance(qps, int | float)
                                or not 0 < qps <= MAX_COUNT):
            raise r.fail(f"{path}.qps", f"expected a number > 0, got {show(qps)}")
        scope = o.get("scope", "cluster")
        if scope not in ("cluster", "namespace", "namespaces"):
            raise r.fail(f"{path}.scope",
                         f"expected cluster, namespace or namespaces, got {show(scope)}")
        watched = tuple(list_of(r, o.get("namespaces"), f"{path}.namespaces"))
        if scope == "namespaces":
            try:
                scopes.only([str(n) for n in watched])
            except scopes.ScopeError as exc:
                raise r.fail(f"{path}.namespaces", str(exc).split(": ", 1)[1]) from None
        elif watched:
            raise r.fail(f"{path}.namespaces", "expected only with scope: namespaces")
        out.append(OperatorSpec(name=r.string(o.get("name"), f"{path}.name"),
                                namespace=r.namespace(o.get("namespace", "default"),
                                                      f"{path}.namespace"),
                                scope=scope, qps=float(qps) if qps is not None else None,
                                namespaces=tuple(str(n) for n in watched),
                                burst=r.integer(o.get("burst", 10), f"{path}.burst", 1),
                                installed=installed))
    names = [o.name for o in out]
    for name in names:
        if names.count(name) > 1:
            raise r.fail("operators", f"expected unique names, {name!r} appears twice")
    return tuple(out)


def _expect(r: Reader, value: object, path: str) -> Expectation:
    e = r.mapping(value, path, {"at", "cluster", "pods", "workers", "phase", "restarts",
                                "services", "managedBy"})
    checks: dict[str, Any] = {}
    if "managedBy" in e:
        checks["managedBy"] = r.string(e["managedBy"], f"{path}.managedBy")
    for key in ("pods", "restarts", "services"):
        if key in e:
            checks[key] = r.integer(e[key], f"{path}.{key}")
    if "phase" in e:
        phases = ("", "Updating", "Running", "AutoscalingExceptionRecovery", "Error")
        if e["phase"] not in phases:
            raise r.fail(f"{path}.phase",
                         f"expected one of {list(phases)}, got {show(e['phase'])}")
        checks["phase"] = e["phase"]
    if "workers" in e:
        w = e["workers"]
        if not isinstance(w, Mapping):
            raise r.fail(f"{path}.workers",
                         f"expected a mapping of pod types to counts, got {show(w)}")
        checks["workers"] = {str(k): r.integer(v, f"{path}.workers.{k}") for k, v in w.items()}
    if not checks:
        raise r.fail(path, "expected at least one of pods, workers, phase, restarts, services")
    return Expectation(at=duration(e.get("at", 0), r.source, f"{path}.at"),
                       cluster=r.cluster(e.get("cluster"), f"{path}.cluster"), checks=checks)


def _check_references(r: Reader, timeline: tuple[Step, ...], expect: tuple[Expectation, ...],
                      operators: set[str]) -> None:
    known: set[str] = set()
    for step in sorted(timeline, key=lambda s: (s.at, s.index)):
        path = f"timeline[{step.index}]"
        if step.kind == "apply":
            meta = step.args["metadata"]
            known.add(f"{meta['namespace']}/{meta['name']}")
        elif timeline_steps.STEPS[step.kind].operator and step.args not in operators:
            raise r.fail(f"{path}.{step.kind}",
                         f"expected one of the operators {sorted(operators)}, got {step.args!r}")
        elif step.kind in ("watchCut", "apiFaults") and step.args["operator"] and (
                step.args["operator"] not in operators):
            raise r.fail(f"{path}.{step.kind}.operator",
                         f"expected one of the operators {sorted(operators)}, "
                         f"got {step.args['operator']!r}")
        elif isinstance(step.args, Mapping) and "cluster" in step.args:  # noqa: SIM102
            if step.args["cluster"] not in known:
                raise r.fail(f"{path}.{step.kind}.cluster",
                             f"expected a cluster applied earlier in the timeline "
                             f"({sorted(known) or 'none yet'}), got {step.args['cluster']!r}")
    applied = {f"{s.args['metadata']['namespace']}/{s.args['metadata']['name']}"
               for s in timeline if s.kind == "apply"}
    for i, e in enumerate(expect):
        if e.cluster not in applied:
            raise r.fail(f"expect[{i}].cluster",
                         f"expected a cluster the timeline applies ({sorted(applied)}), "
                         f"got {e.cluster!r}")
