"""The timeline: every kind of scenario step, parsed and run from one table (`STEPS`).

A step kind is one row: its name in scenario files, the spelling older files used (still
read, with a deprecation notice), how its arguments are read and checked, and what it does
to the simulated world. The scenario parser, `World.do` and the stateful tests all go
through this table, so adding a step is adding a row.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attrs import field, frozen

from driver.execute import ApiError
from engine import claims
from engine import events as ev
from engine.labels import LABEL_KIND, LABEL_TYPE
from sim import raylink, story
from sim.api import Fault
from sim.reading import Reader, duration, list_of, raycluster, read_text, read_yaml, resources, show

if TYPE_CHECKING:
    from sim.world import World


@frozen(kw_only=True)
class Step:
    """One step of a timeline: at `at` seconds, do `kind` (a name in `STEPS`) with `args`."""

    at: float
    kind: str
    args: Any = field(eq=False)
    index: int = 0


@frozen(kw_only=True)
class StepKind:
    """One row of the table: a step's name, its older spelling, how its arguments are
    read, and what it does."""

    name: str
    legacy: str
    parse: Callable[[Reader, object, str, Path], Any]
    run: Callable[[World, Any], None]
    operator: bool = False  # its argument names an operator of the scenario


def run(world: World, step: Step) -> None:
    """Do `step` in `world` now."""
    STEPS[step.kind].run(world, step.args)


def canonical(kind: str) -> tuple[str, str]:
    """The table's name for `kind`, and a deprecation notice if it is an older spelling."""
    if kind in STEPS:
        return kind, ""
    new = LEGACY[kind]
    return new, f"step {kind!r} is deprecated: write {new!r}"


def parse(r: Reader, value: object, path: str, base: Path, index: int,
          notices: list[str]) -> Step:
    """Read one timeline entry: `at` and exactly one step kind."""
    s = r.mapping(value, path, {"at", "applyFile", *STEPS, *LEGACY})
    at = duration(s.get("at", 0), r.source, f"{path}.at")
    kinds = [k for k in s if k != "at"]
    if len(kinds) != 1:
        raise r.fail(path, f"expected exactly one of {['applyFile', *STEPS]}, "
                           f"got {kinds or 'none'}")
    written = kinds[0]
    where = f"{path}.{written}"
    if written == "applyFile":
        return Step(at=at, kind="apply", args=_apply_file(r, s[written], where, base),
                    index=index)
    kind, notice = canonical(written)
    if notice:
        notices.append(f"{r.source}: {path}: {notice}")
    return Step(at=at, kind=kind, args=STEPS[kind].parse(r, s[written], where, base),
                index=index)


def _apply_file(r: Reader, value: object, where: str, base: Path) -> Any:
    target = base / r.string(value, where)
    try:
        inside = target.resolve().is_relative_to(base.resolve())
    except (OSError, RuntimeError):  # a symlink loop
        inside = False
    if not inside:
        raise r.fail(where, f"expected a file under the scenario's directory, got {show(value)}")
    return raycluster(r, read_yaml(read_text(target, r.source, where), r.source, where), where)


# -- reading arguments ---------------------------------------------------------------------


def _parse_apply(r: Reader, value: object, where: str, base: Path) -> Any:
    return raycluster(r, value, where)


def _parse_workload(r: Reader, value: object, where: str, base: Path) -> Any:
    w = r.mapping(value, where, {"cluster", "tasks"})
    tasks = []
    for j, t in enumerate(list_of(r, w.get("tasks"), f"{where}.tasks")):
        tp = f"{where}.tasks[{j}]"
        task = r.mapping(t, tp, {"resources", "count", "duration"})
        tasks.append({"resources": resources(r, task.get("resources"), f"{tp}.resources"),
                      "count": r.integer(task.get("count", 1), f"{tp}.count", minimum=1),
                      "duration": duration(task.get("duration", "60s"), r.source,
                                           f"{tp}.duration")})
    return {"cluster": r.cluster(w.get("cluster"), f"{where}.cluster"), "tasks": tasks}


def _parse_request_resources(r: Reader, value: object, where: str, base: Path) -> Any:
    q = r.mapping(value, where, {"cluster", "bundles"})
    bundles = []
    for j, b in enumerate(list_of(r, q.get("bundles"), f"{where}.bundles")):
        bp = f"{where}.bundles[{j}]"
        if not isinstance(b, Mapping):
            raise r.fail(bp, f"expected a mapping, got {show(b)}")
        count = r.integer(b.get("count", 1), f"{bp}.count", minimum=1)
        res = resources(r, {k: v for k, v in b.items() if k != "count"}, bp)
        bundles.append((res, count))
    return {"cluster": r.cluster(q.get("cluster"), f"{where}.cluster"), "bundles": bundles}


def _parse_pod(r: Reader, value: object, where: str, base: Path) -> Any:
    k = r.mapping(value, where, {"cluster", "role", "type"})
    role = k.get("role", "worker")
    if role not in ("head", "worker"):
        raise r.fail(f"{where}.role", f"expected head or worker, got {show(role)}")
    return {"cluster": r.cluster(k.get("cluster"), f"{where}.cluster"), "role": role,
            "type": k.get("type")}


def _parse_operator(r: Reader, value: object, where: str, base: Path) -> Any:
    return r.string(value, where)


def _parse_api_faults(r: Reader, value: object, where: str, base: Path) -> Any:
    f = r.mapping(value, where, {"verb", "resource", "status", "count", "message", "operator"})
    verb = f.get("verb", "*")
    verbs = ("*", "get", "list", "create", "patch", "patch_status", "replace", "delete")
    if verb not in verbs:  # a tuple: a value that is no string may be unhashable
        raise r.fail(f"{where}.verb", f"expected one of {sorted(verbs)}, got {show(verb)}")
    status = f.get("status", 500)
    if status not in (0, 403, 404, 409, 429, 500, 503):
        raise r.fail(f"{where}.status",
                     "expected one of 0 (timeout), 403, 404, 409, 429, 500, 503, "
                     f"got {show(status)}")
    return {"verb": verb, "resource": r.string(f.get("resource", "*"), f"{where}.resource"),
            "status": status, "count": r.integer(f.get("count", 1), f"{where}.count", 1),
            "operator": r.string(f.get("operator", ""), f"{where}.operator")
            if "operator" in f else ""}


def _parse_watch_cut(r: Reader, value: object, where: str, base: Path) -> Any:
    w = r.mapping(value, where, {"operator", "duration"})
    return {"operator": r.string(w.get("operator"), f"{where}.operator"),
            "duration": duration(w.get("duration", "30s"), r.source, f"{where}.duration")}


def _parse_delete(r: Reader, value: object, where: str, base: Path) -> Any:
    d = r.mapping(value, where, {"kind", "namespace", "name"})
    if d.get("kind", "RayCluster") != "RayCluster":
        raise r.fail(f"{where}.kind", f"expected RayCluster, got {show(d.get('kind'))}")
    return {"cluster": f"{r.namespace(d.get('namespace'), f'{where}.namespace')}/"
                       f"{r.object_name(d.get('name'), f'{where}.name')}"}


# -- doing them ----------------------------------------------------------------------------


def _run_apply(world: World, obj: dict[str, Any]) -> None:
    meta = obj["metadata"]
    ns, name = meta["namespace"], meta["name"]
    try:
        old = world.api.get("rayclusters", ns, name)
    except ApiError:
        world.namespace(ns)
        world.api.create("rayclusters", ns, obj)
        story.tell(world, f"{ns}/{name}", story.created(obj["spec"]))
        return
    body = {**old, "spec": obj["spec"],
            "metadata": {**old["metadata"], "labels": meta.get("labels") or {}}}
    world.api.replace("rayclusters", ns, name, body)
    story.tell(world, f"{ns}/{name}", story.edited(old.get("spec") or {}, obj["spec"]))


def _run_delete(world: World, args: dict[str, Any]) -> None:
    ns, name = args["cluster"].split("/")
    with contextlib.suppress(ApiError):
        world.api.delete("rayclusters", ns, name)
        story.tell(world, args["cluster"], "deleted")


def _run_workload(world: World, args: dict[str, Any]) -> None:
    key = _key(args["cluster"])
    rc = raylink.ray_cluster(world, key)
    for task in args["tasks"]:
        rc.submit(task["resources"], task["count"], task["duration"], world.now)
    world.demand_since.setdefault(key, world.now)
    story.tell(world, args["cluster"], "workload: " + ", ".join(
        f"{t['count']} tasks of {_shape(t['resources'])} for {t['duration']:g} s"
        for t in args["tasks"]), story.DEMAND)
    raylink.place(world, rc)


def _run_request_resources(world: World, args: dict[str, Any]) -> None:
    raylink.ray_cluster(world, _key(args["cluster"])).requests = list(args["bundles"])
    story.tell(world, args["cluster"], "request_resources: " + (", ".join(
        f"{n} x {_shape(b)}" for b, n in args["bundles"]) or "withdrawn"), story.DEMAND)


def _pick(world: World, args: dict[str, Any]) -> tuple[str, str] | None:
    ns, name = args["cluster"].split("/")
    candidates = [
        key for key, pod in raylink.pods_of(world, (ns, name))
        if pod["metadata"]["labels"].get(LABEL_KIND) == args["role"]
        and (args.get("type") is None
             or pod["metadata"]["labels"].get(LABEL_TYPE) == args["type"])
        and not pod["metadata"].get("deletionTimestamp")
    ]
    return candidates[0] if candidates else None


def _run_kill_pod(world: World, args: dict[str, Any]) -> None:
    key = _pick(world, args)
    if key is not None:
        world.api.delete("pods", key[0], key[1])
        story.tell(world, args["cluster"], f"{args['role']} pod {key[1]} killed")


def _run_fail_pod(world: World, args: dict[str, Any]) -> None:
    key = _pick(world, args)
    if key is not None:
        pod = world.api.patch_status("pods", key[0], key[1], {"phase": "Failed"})
        raylink.ray_leave(world, pod)
        story.tell(world, args["cluster"], f"{args['role']} pod {key[1]} failed")


def _run_restart_operator(world: World, name: str) -> None:
    world.operators.pop(name, None)
    world.start_operator(name)
    story.tell(world, "", f"operator {name} restarted")


def _run_install_operator(world: World, name: str) -> None:
    if name not in world.operators:
        world.start_operator(name)
        story.tell(world, "", f"operator {name} installed")


def _run_crash_operator(world: World, name: str) -> None:
    """The install stops without a word: its leases expire, then others take over."""
    world.operators.pop(name, None)
    story.tell(world, "", f"operator {name} crashed")


def _run_uninstall_operator(world: World, name: str) -> None:
    """`helm uninstall`: the process stops on SIGTERM and deletes its leases, so the
    remaining installs take its clusters over at once (no lease expiry to wait for)."""
    op = world.operators.pop(name, None)
    if op is None:
        return
    story.tell(world, "", f"operator {name} uninstalled")
    for (ns, lease), obj in sorted(world.api.objects["leases"].items()):
        if (obj["metadata"].get("labels") or {}).get(claims.LEASE_LABEL) == name:
            with contextlib.suppress(ApiError):
                op.api.delete("leases", ns, lease)  # the stopping process, its client


def _run_watch_cut(world: World, args: dict[str, Any]) -> None:
    """The operator's watches drop for a while; it misses every change, then resumes
    from a resourceVersion the API no longer has (410 Gone) and must relist."""
    name = args["operator"]
    world.cut[name] = world.now + args["duration"]
    story.tell(world, "", f"operator {name}'s watches cut for {args['duration']:g} s")

    def heal() -> None:
        world.cut.pop(name, None)
        op = world.operators.get(name)
        if op is not None:
            if world.trace_out is not None:
                world.write({"t": world.now, "kind": "fault", "operator": name,
                             "cluster": None, "type": "WatchExpired410"})
            world.relist(op)
    world.at(world.now + args["duration"], heal)


def _run_api_faults(world: World, args: dict[str, Any]) -> None:
    world.api.faults.append(Fault(verb=args["verb"], resource=args["resource"],
                                  status=args["status"], count=args["count"],
                                  client=args.get("operator") or ""))
    story.tell(world, "", f"the API fails the next {args['count']} {args['verb']} "
                          f"{args['resource']} calls with {args['status'] or 'a timeout'}")


STEPS: dict[str, StepKind] = {row.name: row for row in (
    StepKind(name="apply", legacy="", parse=_parse_apply, run=_run_apply),
    StepKind(name="delete", legacy="", parse=_parse_delete, run=_run_delete),
    StepKind(name="workload", legacy="", parse=_parse_workload, run=_run_workload),
    StepKind(name="requestResources", legacy="request_resources",
             parse=_parse_request_resources, run=_run_request_resources),
    StepKind(name="killPod", legacy="kill_pod", parse=_parse_pod, run=_run_kill_pod),
    StepKind(name="failPod", legacy="fail_pod", parse=_parse_pod, run=_run_fail_pod),
    StepKind(name="restartOperator", legacy="restart_operator", parse=_parse_operator,
             run=_run_restart_operator, operator=True),
    StepKind(name="installOperator", legacy="install_operator", parse=_parse_operator,
             run=_run_install_operator, operator=True),
    StepKind(name="uninstallOperator", legacy="uninstall_operator", parse=_parse_operator,
             run=_run_uninstall_operator, operator=True),
    StepKind(name="crashOperator", legacy="crash_operator", parse=_parse_operator,
             run=_run_crash_operator, operator=True),
    StepKind(name="apiFaults", legacy="api_faults", parse=_parse_api_faults,
             run=_run_api_faults),
    StepKind(name="watchCut", legacy="watch_cut", parse=_parse_watch_cut, run=_run_watch_cut),
)}
"""Every step kind by its name in scenario files (`applyFile` is read as `apply`)."""

LEGACY: dict[str, str] = {row.legacy: row.name for row in STEPS.values() if row.legacy}
"""Older spellings still read: old name -> name."""


def _shape(resources: Mapping[str, float]) -> str:
    return " ".join(f"{k} {v:g}" for k, v in resources.items())


def _key(text: str) -> ev.ClusterKey:
    ns, name = text.split("/")
    return (ns, name)
