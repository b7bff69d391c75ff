"""What must hold in every simulated run, checked as it goes and at its end.

During the run: every write to a cluster comes from the install its claim names (no two
installs act on one cluster, no stale one after a hand-over), no operator acts outside its
scope, no worker is deleted while tasks run on it (drain before delete), no outdated worker
goes while its type has no more than minWorkers running. At the end: the management graph
(`engine.ownership`) holds, no type is above its maxWorkers, no pod outlives its cluster.
Also the scenario's expectations, and the samples `--plot` draws. Each broken rule becomes
a line in `violations` (docs/simulator.md).
"""

from __future__ import annotations

import functools
from collections import Counter
from typing import TYPE_CHECKING, Any

from driver.operator import Operator
from engine import actions as act
from engine import claims, ownership
from engine import events as ev
from engine.labels import LABEL_CLUSTER, LABEL_KIND, LABEL_TYPE
from sim import raylink, story
from sim.api import Client
from sim.scenario import Expectation

if TYPE_CHECKING:
    from sim.world import World

SAMPLE_PERIOD = 5.0


def observe_cluster(world: World, cluster: str) -> dict[str, Any]:
    ns, name = cluster.split("/")
    pods = [p for _, p in raylink.pods_of(world, (ns, name))
            if not p["metadata"].get("deletionTimestamp")
            and (p.get("status") or {}).get("phase") in ("Pending", "Running")]
    workers: Counter[str] = Counter(
        p["metadata"]["labels"].get(LABEL_TYPE, "")
        for p in pods if p["metadata"]["labels"].get(LABEL_KIND) == ev.WORKER)
    rc = world.api.objects["rayclusters"].get((ns, name))
    status = (rc or {}).get("status") or {}
    services = sum(1 for (sns, _), s in world.api.objects["services"].items()
                   if sns == ns and (s["metadata"].get("labels") or {}).get(
                       LABEL_CLUSTER) == name)
    claim = claim_of(world, (ns, name), rc) if rc is not None else None
    return {"exists": rc is not None, "phase": status.get("phase", ""),
            "managedBy": claim.install if claim is not None else "",
            "restarts": status.get("autoscalerRetries", 0), "pods": len(pods),
            "workers": dict(sorted(workers.items())), "services": services}


def expect(world: World, expectation: Expectation, index: int = 0) -> None:
    seen = observe_cluster(world, expectation.cluster)
    for check, expected in expectation.checks.items():
        actual = seen[check]
        if check == "workers":
            actual = {t: seen["workers"].get(t, 0) for t in expected}
        ok = actual == expected
        world.results.append({"expectation": index, "at": expectation.at,
                              "cluster": expectation.cluster, "check": check,
                              "expected": expected, "actual": actual, "ok": ok})
        if world.trace_out is not None:
            world.write({"t": world.now, "kind": "expect", "operator": None,
                         "cluster": expectation.cluster, "type": "Expectation",
                         "check": check, "expected": expected, "actual": actual, "ok": ok})


def sample(world: World) -> None:
    for (ns, name), obj in sorted(world.api.objects["rayclusters"].items()):
        seen = observe_cluster(world, f"{ns}/{name}")
        desired = sum(((obj.get("status") or {}).get("desiredWorkers") or {}).values())
        world.series.append((world.now, f"{ns}/{name}", sum(seen["workers"].values()),
                            desired))
    world.at(world.now + SAMPLE_PERIOD, functools.partial(sample, world))


def final_checks(world: World) -> None:
    ownership_checks(world)
    bounds_checks(world)


def ownership_checks(world: World) -> None:
    world.violations.extend(f"end: {v}" for v in ownership_violations(world))


def managers(world: World) -> dict[str, list[str]]:
    """Who manages each cluster now (see `_acting`), as `ns/name` -> installs."""
    return {f"{ns}/{name}": names
            for (ns, name), names in acting(world, list(world.api.objects["rayclusters"]))
            .items()}


def ownership_violations(world: World) -> list[str]:
    """The management graph (engine.ownership) of what is there now and who acted, as
    if claims had settled."""
    clusters = list(world.api.objects["rayclusters"])
    pods = [(ns, name, (pod["metadata"].get("labels") or {}).get(LABEL_CLUSTER))
            for (ns, name), pod in world.api.objects["pods"].items()]
    graph = ownership.build(
        installs={name: op.scope for name, op in world.operators.items()},
        clusters=clusters,
        pods=[(ns, name, owner) for ns, name, owner in pods if owner],
        acting=acting(world, clusters),
    )
    return ownership.violations(graph, settled=True)


def acting(world: World, clusters: list[ev.ClusterKey]) -> dict[ev.ClusterKey, list[str]]:
    """Who acts on each cluster now: the running installs that wrote to it in the epoch
    of its current claim (an install that acted in an earlier epoch handed over)."""
    out: dict[ev.ClusterKey, list[str]] = {}
    for key in clusters:
        claim = claim_of(world, key, world.api.objects["rayclusters"][key])
        acted = world.acted.get(key, {})
        out[key] = sorted(
            name for name, epoch in acted.items()
            if name in world.operators and claim is not None and epoch == claim.epoch)
        if claim is not None and claim.install in world.operators and (
                claim.install not in out[key]):
            out[key].append(claim.install)  # holds it, nothing to write yet
    return out


def bounds_checks(world: World) -> None:
    for (ns, name), obj in sorted(world.api.objects["rayclusters"].items()):
        spec = obj.get("spec") or {}
        seen = observe_cluster(world, f"{ns}/{name}")
        for pod_type in spec.get("podTypes") or []:
            top = pod_type.get("maxWorkers")
            have = seen["workers"].get(pod_type.get("name"), 0)
            if isinstance(top, int) and have > top:
                world.violations.append(f"end: {ns}/{name}: {have} live workers of type "
                                        f"{pod_type.get('name')} above maxWorkers {top}")
    for (ns, pod_name), pod in sorted(world.api.objects["pods"].items()):
        cluster = (pod["metadata"].get("labels") or {}).get(LABEL_CLUSTER)
        if cluster and (ns, cluster) not in world.api.objects["rayclusters"] and not pod[
                "metadata"].get("deletionTimestamp"):
            world.violations.append(f"end: pod {ns}/{pod_name} belongs to no live cluster")


def landed(world: World, client: Client, verb: str, resource: str, obj: dict[str, Any]) -> None:
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
        if not owner or (verb == "create" and meta["uid"] not in world.api.live_uids):
            return
        key = (meta["namespace"], owner)
    else:
        return
    cluster = world.api.objects["rayclusters"].get(key)
    if cluster is None:
        return
    refs = {r.get("uid") for r in meta.get("ownerReferences") or []}
    if resource != "rayclusters" and refs and cluster["metadata"]["uid"] not in refs:
        return  # an object of an earlier cluster of that name
    claim = claim_of(world, key, cluster)
    op = client.name
    if claim is None or claim.install != op:
        holder = f"{claim.install} (epoch {claim.epoch})" if claim else "nobody"
        world.violations.append(f"t={world.now:g}: {op} wrote ({verb} {resource} "
                                f"{meta['name']}) to {key[0]}/{key[1]} while its claim "
                                f"names {holder}")
        return
    acted(world, op, key, claim)


def claim_of(world: World, key: ev.ClusterKey, cluster: dict[str, Any]) -> claims.Claim | None:
    """The claim on a RayCluster object, parsed once per resourceVersion."""
    rv = cluster["metadata"].get("resourceVersion")
    found = world.claims_seen.get(key)
    if found is not None and found[0] == rv:
        return found[1]
    try:
        claim = claims.parse(cluster)
    except claims.BadClaim:
        claim = None
    world.claims_seen[key] = (rv, claim)
    return claim


def acted(world: World, op: str, key: ev.ClusterKey, claim: claims.Claim) -> None:
    acted = world.acted.setdefault(key, {})
    for other, epoch in acted.items():
        if other != op and epoch == claim.epoch:
            world.violations.append(f"t={world.now:g}: {key[0]}/{key[1]} acted on by "
                                    f"{other} and {op} in epoch {epoch}")
    acted[op] = claim.epoch


def on_action(world: World, op: Operator, action: act.Action) -> None:
    world.actions[type(action).__name__] += 1
    key = action.cluster
    if key != ("", "") and not op.covers(key[0]):
        world.violations.append(f"t={world.now:g}: {op.name} acted on {key[0]}/{key[1]}, "
                                "outside its scope")
    if isinstance(action, act.PatchStatus):
        story.status_written(world, f"{key[0]}/{key[1]}", action.status)
        desired = action.status.get("desiredWorkers")
        if world.sampling and isinstance(desired, dict):
            world.decided.append((world.now, f"{key[0]}/{key[1]}", sum(desired.values())))
    if isinstance(action, act.CreatePod) and action.role == ev.WORKER:
        since = world.demand_since.pop(key, None)
        if since is not None:
            world.latencies.append(world.now - since)
    if isinstance(action, act.DrainNode) and action.reason == "outdated":
        rolling_floor(world, action)
    if isinstance(action, act.DeletePod) and op.may_write(action, world.now):
        rc = world.ray.get(key)
        node = rc.nodes.get(action.name) if rc else None
        if node is not None and node.running:
            drained = "drained" if node.draining else "not drained"
            world.violations.append(f"t={world.now:g}: {key[0]}/{key[1]}: worker "
                                    f"{action.name} deleted ({action.reason}, {drained}) "
                                    f"while {node.running} tasks ran on it")


def rolling_floor(world: World, action: act.DrainNode) -> None:
    """An outdated worker may go only while its type keeps min(minWorkers, maxWorkers)
    running workers without it (those being drained or deleted do not count; with maxSurge
    0, maxUnavailable fewer)."""
    key = action.cluster
    obj = world.api.objects["rayclusters"].get(key)
    types = {t.get("name"): t for t in ((obj or {}).get("spec") or {}).get("podTypes") or []
             if isinstance(t, dict)}
    t = types.get(action.pod_type)
    if t is None:
        return
    floor = min(int(t.get("minWorkers", 0)), int(t.get("maxWorkers", 0)))
    rolling = ((obj or {}).get("spec") or {}).get("rollingUpdate") or {}
    if rolling.get("maxSurge", 1) == 0:  # no replacement ahead: maxUnavailable below allowed
        floor = max(0, floor - int(rolling.get("maxUnavailable", 1)))
    rc = world.ray.get(key)
    running = sum(
        1 for (_, name), pod in raylink.pods_of(world, key)
        if name != action.name and pod["metadata"]["labels"].get(LABEL_TYPE) == action.pod_type
        and pod["metadata"]["labels"].get(LABEL_KIND) == ev.WORKER
        and (pod.get("status") or {}).get("phase") == "Running"
        and not pod["metadata"].get("deletionTimestamp")
        and not (rc is not None and name in rc.nodes and rc.nodes[name].draining))
    if running < floor:
        world.violations.append(f"t={world.now:g}: {key[0]}/{key[1]}: outdated worker "
                                f"{action.name} drained with {running} other running workers "
                                f"of type {action.pod_type}, below its minWorkers {floor}")
