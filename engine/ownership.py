"""Who manages what, as a graph, and the invariants that must hold on it.

Nodes are installs, namespaces, clusters and pods; edges say an install's scope covers a
namespace, a namespace holds a cluster, a cluster owns a pod, and an install acts on a
cluster. The invariants:
- a cluster has at most one acting install;
- an install acts only on clusters inside its scope;
- once claims settle, every cluster inside some install's scope has an acting install, and
  it is one of the narrowest installs covering the cluster (`engine.claims` precedence);
- a pod belongs to a cluster of its own namespace.
The simulator builds this graph from what it saw and reports each broken invariant as a
violation; the same functions serve tests and, later, the live operator's self-checks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import networkx as nx

from engine.events import ClusterKey
from engine.scopes import Scope

COVERS = "covers"
HOLDS = "holds"
OWNS = "owns"
ACTS = "acts"


def build(*, installs: Mapping[str, Scope], clusters: Iterable[ClusterKey],
          pods: Iterable[tuple[str, str, str]],
          acting: Mapping[ClusterKey, Iterable[str]]) -> nx.DiGraph:
    """`pods` are (namespace, pod name, owning cluster name); `acting` who acted on what."""
    g = nx.DiGraph()
    cluster_keys = sorted(set(clusters))
    namespaces = sorted({ns for ns, _ in cluster_keys})
    for name, scope in sorted(installs.items()):
        g.add_node(("install", name), scope=scope)
        for ns in namespaces:
            if scope.covers(ns):
                g.add_edge(("install", name), ("namespace", ns), kind=COVERS)
    for ns, name in cluster_keys:
        g.add_edge(("namespace", ns), ("cluster", ns, name), kind=HOLDS)
    for ns, pod, cluster in sorted(pods):
        g.add_edge(("cluster", ns, cluster), ("pod", ns, pod), kind=OWNS)
    for (ns, name), names in sorted(acting.items()):
        for install in sorted(set(names)):
            g.add_edge(("install", install), ("cluster", ns, name), kind=ACTS)
    return g


def _edges(g: nx.DiGraph, node: tuple[str, ...], kind: str, *,
           incoming: bool) -> list[tuple[str, ...]]:
    pairs = g.in_edges(node, data="kind") if incoming else g.out_edges(node, data="kind")
    return [(a if incoming else b) for a, b, k in pairs if k == kind]


def violations(g: nx.DiGraph, *, settled: bool) -> list[str]:
    """Every broken invariant, as a sentence naming the objects."""
    out: list[str] = []
    for node in sorted(n for n in g.nodes if n[0] == "cluster"):
        _, ns, name = node
        actors = _edges(g, node, ACTS, incoming=True)
        if len(actors) > 1:
            out.append(f"{ns}/{name} has {len(actors)} acting installs: "
                       f"{', '.join(a[1] for a in actors)}")
        for actor in actors:
            scope = g.nodes[actor].get("scope")
            if scope is not None and not scope.covers(ns):
                out.append(f"{actor[1]} acts on {ns}/{name} outside its scope ({scope})")
        covering = _edges(g, ("namespace", ns), COVERS, incoming=True)
        if settled and not actors and covering:
            out.append(f"{ns}/{name} is in the scope of {', '.join(c[1] for c in covering)}"
                       " but no install manages it")
        if settled and len(actors) == 1 and covering:
            narrowest = min(g.nodes[c]["scope"].rank for c in covering)
            scope = g.nodes[actors[0]].get("scope")
            if scope is not None and scope.rank > narrowest:
                better = sorted(c[1] for c in covering if g.nodes[c]["scope"].rank == narrowest)
                out.append(f"{actors[0][1]} manages {ns}/{name} though {', '.join(better)} "
                           "covers it with a narrower scope")
        holders = _edges(g, node, HOLDS, incoming=True)
        for pod in _edges(g, node, OWNS, incoming=False):
            if pod[1] != ns or not holders:
                out.append(f"pod {pod[1]}/{pod[2]} belongs to {ns}/{name} outside its namespace")
    return out
