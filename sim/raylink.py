"""Where pods meet Ray: a running pod's Ray joins its cluster, tasks are placed, each
head's load is reported to the operators that cover it every few seconds, and the
operators' drains are answered (`Drains`).

The Ray model itself (nodes, tasks, placement, reports) is `sim.ray`; this module ties it
to the simulated pods: a cluster's Ray is up while its head pod's Ray is.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from driver.execute import result
from engine import actions as act
from engine import events as ev
from engine.labels import LABEL_CLUSTER, LABEL_KIND
from sim import nodes
from sim import ray as raymodel

if TYPE_CHECKING:
    from sim.world import World

LOAD_PERIOD = 5.0


def cluster_of(world: World, pod: dict[str, Any]) -> ev.ClusterKey | None:
    labels = pod["metadata"].get("labels") or {}
    name = labels.get(LABEL_CLUSTER)
    return (pod["metadata"]["namespace"], name) if name else None


def pods_of(world: World, cluster: ev.ClusterKey) -> list[tuple[tuple[str, str], dict[str, Any]]]:
    """The pods of one cluster, by name order."""
    store = world.api.objects["pods"]
    out = []
    for name in sorted(world.cluster_pods.get(cluster, ())):
        pod = store.get((cluster[0], name))
        if pod is not None:
            out.append(((cluster[0], name), pod))
    return out


def ray_cluster(world: World, key: ev.ClusterKey) -> raymodel.RayCluster:
    rc = world.ray.get(key)
    if rc is None:
        rc = world.ray[key] = raymodel.RayCluster(key=key)
    return rc


def ray_join(world: World, key: tuple[str, str]) -> None:
    pod = nodes.pod_at(world, key)
    if pod is None or pod["metadata"].get("deletionTimestamp"):
        return
    if (pod.get("status") or {}).get("phase") != "Running":
        return
    cluster = cluster_of(world, pod)
    if cluster is None:
        return
    rc = ray_cluster(world, cluster)
    role = pod["metadata"]["labels"].get(LABEL_KIND)
    if role == ev.HEAD:
        rc.head_up = True
        rc.join(key[1], pod["status"]["podIP"], raymodel.pod_resources(pod), world.now)
        for other_key, other in pods_of(world, cluster):
            if (other_key != key
                    and (other.get("status") or {}).get("phase") == "Running"
                    and not other["metadata"].get("deletionTimestamp")):
                rc.join(other_key[1], other["status"]["podIP"],
                        raymodel.pod_resources(other), world.now)
    elif rc.head_up:
        rc.join(key[1], pod["status"]["podIP"], raymodel.pod_resources(pod), world.now)
    place(world, rc)


def ray_leave(world: World, pod: dict[str, Any]) -> None:
    cluster = cluster_of(world, pod)
    if cluster is None or cluster not in world.ray:
        return
    rc = world.ray[cluster]
    name = pod["metadata"]["name"]
    if name not in rc.nodes:
        return
    if pod["metadata"]["labels"].get(LABEL_KIND) == ev.HEAD:
        rc.head_up = False
        for node in list(rc.nodes):
            rc.leave(node, world.now)
    else:
        rc.leave(name, world.now)
        place(world, rc)


def place(world: World, rc: raymodel.RayCluster) -> None:
    for placement in rc.schedule(world.now):
        world.at(placement.ends, lambda p=placement, r=rc: finish(world, r, p))  # type: ignore[misc]


def finish(world: World, rc: raymodel.RayCluster, placement: raymodel.Placement) -> None:
    rc.finish(placement, world.now)
    place(world, rc)


def load_reports(world: World) -> None:
    """Every 5 s each operator covering a cluster gets its load: complete the first
    time, then only what changed since its previous report."""
    for key, rc in sorted(world.ray.items()):
        if not rc.head_up:
            continue
        for op in world.operators.values():
            if op.covers(key[0]):
                known = world.reported.get((op.name, key))
                report, versions = rc.report(world.now, known)
                world.reported[(op.name, key)] = versions
                op.inbox.append(report)
    world.at(world.now + LOAD_PERIOD, functools.partial(load_reports, world))


class Drains:
    """The operators' link to the simulated Ray heads (`driver.operator.RayLink`): a drain
    is answered as a real head's GCS would answer Ray's autoscaler. Ray refuses while tasks
    run on the node; once it accepts, it places nothing new there (`sim.ray.RayNode.draining`).
    A node Ray does not know (never joined, or gone) has nothing to drain: accepted."""

    def __init__(self, world: World) -> None:
        self.world = world

    def drain(self, action: act.DrainNode, at: float) -> ev.ActionResult:
        rc = self.world.ray.get(action.cluster)
        if rc is None or not rc.head_up:
            return result(action, at, ev.FAILED_OUTCOME, "the Ray head does not answer")
        node = rc.nodes.get(action.name)
        if node is None:
            return result(action, at, ev.DONE, "no such Ray node")
        if node.running:
            return result(action, at, ev.REFUSED,
                           f"the node is busy: {node.running} tasks run on it")
        node.draining = True
        return result(action, at, ev.DONE)
