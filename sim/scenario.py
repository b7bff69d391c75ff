"""Scenario files (YAML, docs/simulator.md): read strictly, checked fully before anything runs.

A scenario that is wrong anywhere is refused as a whole with one `ScenarioError` naming the
file, the field and what was expected (`validate` and `run` exit 2); nothing runs half-way.
Unknown fields are errors, not silently ignored: a typo in `minWorkers` must not pass.
"""

from __future__ import annotations

import copy
import os
import re
import stat
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml
from attrs import field, frozen

from engine import checks, scopes

STEP_KINDS = ("apply", "applyFile", "workload", "request_resources", "kill_pod",
              "fail_pod", "restart_operator", "api_faults", "watch_cut", "delete",
              "install_operator", "uninstall_operator", "crash_operator")
OPERATOR_STEPS = ("restart_operator", "install_operator", "uninstall_operator", "crash_operator")
_DURATION = re.compile(r"^\s*(\d{1,12}(?:\.\d{1,9})?)\s*(ms|s|m|h)?\s*$")
MAX_DURATION = 7 * 24 * 3600.0
"""The longest a scenario, or any time in it, may be (a run simulates it in minutes)."""
MAX_FILE_BYTES = 1024 * 1024
"""The largest scenario or cluster file read."""
MAX_COUNT = 10**9
MAX_NODES = 100_000
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


class ScenarioError(ValueError):
    """A scenario that cannot run: `FILE: field: expected ..., got ...`."""

    def __init__(self, source: str, path: str, message: str) -> None:
        self.source = source
        self.path = path
        super().__init__(f"{source}: {path}: {message}")


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
    installed: bool = True  # running from t=0; else started by an `install_operator` step

    @property
    def scope_value(self) -> scopes.Scope:
        if self.scope == "cluster":
            return scopes.EVERYWHERE
        if self.scope == "namespace":
            return scopes.only([self.namespace])
        return scopes.only(self.namespaces)


@frozen(kw_only=True)
class Step:
    at: float
    kind: str
    args: Any = field(eq=False)
    index: int = 0


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


def duration(value: object, source: str, path: str) -> float:
    if isinstance(value, bool):
        raise ScenarioError(source, path,
                            f"expected a duration such as 90s, 5m or 1h, got {value!r}")
    if isinstance(value, int | float):
        if not 0 <= value <= MAX_DURATION:  # NaN fails this too
            raise ScenarioError(source, path, f"expected a duration between 0 and "
                                              f"{MAX_DURATION:g} s (7 days), got {_show(value)}")
        return float(value)
    match = _DURATION.match(value) if isinstance(value, str) and len(value) <= 40 else None
    if match is None:
        raise ScenarioError(source, path,
                            f"expected a duration such as 90s, 5m or 1h, got {_show(value)}")
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds > MAX_DURATION:
        raise ScenarioError(source, path, f"expected at most 7 days, got {value!r}")
    return seconds


def read_text(path: Path, source: str, where: str, *, limit: int = MAX_FILE_BYTES) -> str:
    """A file's text, read as untrusted: a regular file of at most `limit` bytes, UTF-8."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO would block the open itself
            raise ScenarioError(source, where, f"{path} is not a regular file")
        with open(path, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise ScenarioError(source, where, f"{path} is not a regular file")
            data = handle.read(limit + 1)
    except OSError as exc:
        raise ScenarioError(source, where,
                            f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise ScenarioError(source, where, f"{path} is larger than {limit} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(source, where,
                            f"{path} is not UTF-8 text (byte {exc.start})") from None


def _check_depth(text: str, source: str, where: str) -> None:
    """Refuse deep nesting before anything builds objects from the text: building a
    document nested 100,000 deep overflows the C stack of libyaml's composer (a crash, not
    an exception). The event stream is read without recursion."""
    depth = 0
    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > checks.MAX_DEPTH:
                raise ScenarioError(source, where,
                                    f"is nested deeper than {checks.MAX_DEPTH} levels")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def read_yaml(text: str, source: str, where: str) -> Any:
    """YAML parsed by libyaml when present (linear and fast), refused when it nests too
    deep or expands too far (an alias bomb), naming `where`."""
    try:
        _check_depth(text, source, where)
        data = yaml.load(text, Loader=_LOADER)  # a safe loader (libyaml's when present)
    except yaml.YAMLError as exc:
        raise ScenarioError(source, where, f"is not valid YAML: {exc}") from None
    except RecursionError:
        raise ScenarioError(source, where, "is nested too deeply") from None
    problem = checks.shape_problem(data)
    if problem is not None:
        raise ScenarioError(source, where, problem)
    return data


def quantity(value: object, source: str, path: str) -> float:
    from engine import quantities

    try:
        return float(quantities.parse(value))
    except quantities.QuantityError as exc:
        raise ScenarioError(source, path, str(exc)) from None


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, message: str) -> ScenarioError:
        return ScenarioError(self.source, path, message)

    def mapping(self, value: object, path: str, allowed: set[str]) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(path, f"expected a mapping, got {_show(value)}")
        for key in value:
            if key not in allowed:
                raise self.fail(f"{path}.{key}" if path else str(key),
                                f"unknown field; expected one of {sorted(allowed)}")
        return value

    def string(self, value: object, path: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(path, f"expected a non-empty string, got {_show(value)}")
        return value

    def integer(self, value: object, path: str, minimum: int = 0,
                maximum: int = MAX_COUNT) -> int:
        if (isinstance(value, bool) or not isinstance(value, int) or value < minimum
                or value > maximum):
            raise self.fail(path, f"expected an integer from {minimum} to {maximum}, got "
                                  f"{_show(value)}")
        return value

    def cluster(self, value: object, path: str) -> str:
        text = self.string(value, path)
        if text.count("/") != 1 or not all(text.split("/")):
            raise self.fail(path, f"expected <namespace>/<name>, got {_show(text)}")
        namespace, name = text.split("/")
        self.namespace(namespace, path)
        self.object_name(name, path)
        return text

    def namespace(self, value: object, path: str) -> str:
        """A namespace name, as the API server allows it (a DNS-1123 label)."""
        return self._named(value, path, "namespace", checks.dns_label)

    def object_name(self, value: object, path: str) -> str:
        """An object's name, as the API server allows it (a DNS-1123 subdomain)."""
        return self._named(value, path, "name", checks.dns_subdomain)

    def _named(self, value: object, path: str, what: str,
               rule: Callable[[str], str | None]) -> str:
        text = self.string(value, path)
        why = rule(text)
        if why is not None:
            raise self.fail(path, f"{what} {_show(text)} {why}")
        return text


def _show(value: object) -> str:
    return checks.show(value)


def load(path: str | Path) -> Scenario:
    """Read and check a scenario file; raise `ScenarioError` on any problem."""
    source = str(path)
    data = read_yaml(read_text(Path(path), source, "(file)"), source, "(file)")
    return parse(data, source=source, base=Path(path).parent)


def parse(data: object, *, source: str, base: Path) -> Scenario:
    r = _Reader(source)
    top = r.mapping(data, "", {"name", "description", "seed", "duration", "cluster",
                               "operators", "timeline", "expect"})
    name = r.string(top.get("name"), "name")
    seed = r.integer(top.get("seed", 0), "seed")
    total = duration(top.get("duration", "600s"), source, "duration")
    cluster = r.mapping(top.get("cluster") or {}, "cluster", {"nodes", "podStartup"})
    nodes = tuple(_node(r, n, f"cluster.nodes[{i}]")
                  for i, n in enumerate(_list(r, cluster.get("nodes"), "cluster.nodes")))
    startup = r.mapping(cluster.get("podStartup") or {}, "cluster.podStartup", {"delay", "jitter"})
    delay = duration(startup.get("delay", "5s"), source, "cluster.podStartup.delay")
    jitter = duration(startup.get("jitter", "2s"), source, "cluster.podStartup.jitter")
    operators = _operators(r, top.get("operators"))
    timeline = tuple(_step(r, s, f"timeline[{i}]", base, i)
                     for i, s in enumerate(_list(r, top.get("timeline"), "timeline")))
    expect = tuple(_expect(r, e, f"expect[{i}]")
                   for i, e in enumerate(_list(r, top.get("expect"), "expect")))
    _check_references(r, timeline, expect, {o.name for o in operators})
    return Scenario(
        name=name, source=source, description=str(top.get("description") or ""), seed=seed,
        duration=total, nodes=nodes, startup_delay=delay, startup_jitter=jitter,
        operators=operators, timeline=tuple(sorted(timeline, key=lambda s: (s.at, s.index))),
        expect=expect,
    )


def _list(r: _Reader, value: object, path: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise r.fail(path, f"expected a list, got {_show(value)}")
    return value


def _node(r: _Reader, value: object, path: str) -> NodePool:
    n = r.mapping(value, path, {"name", "cpu", "memory", "gpu", "count"})
    return NodePool(
        name=r.string(n.get("name", "node"), f"{path}.name"),
        cpu=quantity(n.get("cpu", 64), r.source, f"{path}.cpu"),
        memory=quantity(n.get("memory", "256Gi"), r.source, f"{path}.memory"),
        gpu=quantity(n.get("gpu", 0), r.source, f"{path}.gpu"),
        count=r.integer(n.get("count", 1), f"{path}.count", minimum=1, maximum=MAX_NODES),
    )


def _operators(r: _Reader, value: object) -> tuple[OperatorSpec, ...]:
    if value is None:
        return (OperatorSpec(name="ray-operator", namespace="default", scope="cluster"),)
    out = []
    for i, item in enumerate(_list(r, value, "operators")):
        path = f"operators[{i}]"
        o = r.mapping(item, path, {"name", "namespace", "scope", "namespaces", "qps", "burst",
                                   "installed"})
        installed = o.get("installed", True)
        if not isinstance(installed, bool):
            raise r.fail(f"{path}.installed", f"expected true or false, got {_show(installed)}")
        qps = o.get("qps")
        if qps is not None and (isinstance(qps, bool) or not isinstance(qps, int | float)
                                or not 0 < qps <= MAX_COUNT):
            raise r.fail(f"{path}.qps", f"expected a number > 0, got {_show(qps)}")
        scope = o.get("scope", "cluster")
        if scope not in ("cluster", "namespace", "namespaces"):
            raise r.fail(f"{path}.scope",
                         f"expected cluster, namespace or namespaces, got {_show(scope)}")
        watched = tuple(_list(r, o.get("namespaces"), f"{path}.namespaces"))
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


def _step(r: _Reader, value: object, path: str, base: Path, index: int) -> Step:
    s = r.mapping(value, path, {"at", *STEP_KINDS})
    at = duration(s.get("at", 0), r.source, f"{path}.at")
    kinds = [k for k in STEP_KINDS if k in s]
    if len(kinds) != 1:
        raise r.fail(path, f"expected exactly one of {list(STEP_KINDS)}, got {kinds or 'none'}")
    kind = kinds[0]
    args = s[kind]
    where = f"{path}.{kind}"
    if kind == "applyFile":
        target = base / r.string(args, where)
        try:
            inside = target.resolve().is_relative_to(base.resolve())
        except (OSError, RuntimeError):  # a symlink loop
            inside = False
        if not inside:
            raise r.fail(where, f"expected a file under the scenario's directory, got "
                                f"{_show(args)}")
        args = read_yaml(read_text(target, r.source, where), r.source, where)
        kind = "apply"
    if kind == "apply":
        args = _raycluster(r, args, where)
    elif kind == "workload":
        w = r.mapping(args, where, {"cluster", "tasks"})
        tasks = []
        for j, t in enumerate(_list(r, w.get("tasks"), f"{where}.tasks")):
            tp = f"{where}.tasks[{j}]"
            task = r.mapping(t, tp, {"resources", "count", "duration"})
            tasks.append({"resources": _resources(r, task.get("resources"), f"{tp}.resources"),
                          "count": r.integer(task.get("count", 1), f"{tp}.count", minimum=1),
                          "duration": duration(task.get("duration", "60s"), r.source,
                                               f"{tp}.duration")})
        args = {"cluster": r.cluster(w.get("cluster"), f"{where}.cluster"), "tasks": tasks}
    elif kind == "request_resources":
        q = r.mapping(args, where, {"cluster", "bundles"})
        bundles = []
        for j, b in enumerate(_list(r, q.get("bundles"), f"{where}.bundles")):
            bp = f"{where}.bundles[{j}]"
            if not isinstance(b, Mapping):
                raise r.fail(bp, f"expected a mapping, got {_show(b)}")
            count = r.integer(b.get("count", 1), f"{bp}.count", minimum=1)
            res = _resources(r, {k: v for k, v in b.items() if k != "count"}, bp)
            bundles.append((res, count))
        args = {"cluster": r.cluster(q.get("cluster"), f"{where}.cluster"), "bundles": bundles}
    elif kind in ("kill_pod", "fail_pod"):
        k = r.mapping(args, where, {"cluster", "role", "type"})
        role = k.get("role", "worker")
        if role not in ("head", "worker"):
            raise r.fail(f"{where}.role", f"expected head or worker, got {_show(role)}")
        args = {"cluster": r.cluster(k.get("cluster"), f"{where}.cluster"), "role": role,
                "type": k.get("type")}
    elif kind in OPERATOR_STEPS:
        args = r.string(args, where)
    elif kind == "api_faults":
        f = r.mapping(args, where, {"verb", "resource", "status", "count", "message",
                                    "operator"})
        verb = f.get("verb", "*")
        verbs = ("*", "get", "list", "create", "patch", "patch_status", "replace", "delete")
        if verb not in verbs:  # a tuple: a value that is no string may be unhashable
            raise r.fail(f"{where}.verb", f"expected one of {sorted(verbs)}, got {_show(verb)}")
        status = f.get("status", 500)
        if status not in (0, 403, 404, 409, 429, 500, 503):
            raise r.fail(f"{where}.status",
                         "expected one of 0 (timeout), 403, 404, 409, 429, 500, 503, "
                         f"got {_show(status)}")
        args = {"verb": verb, "resource": r.string(f.get("resource", "*"), f"{where}.resource"),
                "status": status, "count": r.integer(f.get("count", 1), f"{where}.count", 1),
                "operator": r.string(f.get("operator", ""), f"{where}.operator")
                if "operator" in f else ""}
    elif kind == "watch_cut":
        w = r.mapping(args, where, {"operator", "duration"})
        args = {"operator": r.string(w.get("operator"), f"{where}.operator"),
                "duration": duration(w.get("duration", "30s"), r.source, f"{where}.duration")}
    elif kind == "delete":
        d = r.mapping(args, where, {"kind", "namespace", "name"})
        if d.get("kind", "RayCluster") != "RayCluster":
            raise r.fail(f"{where}.kind", f"expected RayCluster, got {_show(d.get('kind'))}")
        args = {"cluster": f"{r.namespace(d.get('namespace'), f'{where}.namespace')}/"
                           f"{r.object_name(d.get('name'), f'{where}.name')}"}
    return Step(at=at, kind=kind, args=args, index=index)


def _resources(r: _Reader, value: object, path: str) -> dict[str, float]:
    if not isinstance(value, Mapping) or not value:
        raise r.fail(path, f"expected a mapping of resource names to amounts, got {_show(value)}")
    out = {}
    for k, v in value.items():
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= MAX_COUNT:
            raise r.fail(f"{path}.{k}", f"expected a number from 0 to {MAX_COUNT}, got "
                                        f"{_show(v)}")
        out[str(k)] = float(v)
    return out


def _raycluster(r: _Reader, value: object, path: str) -> dict[str, Any]:
    obj = r.mapping(value, path, {"apiVersion", "kind", "metadata", "spec", "status"})
    if obj.get("apiVersion") != "cluster.ray.io/v1" or obj.get("kind") != "RayCluster":
        raise r.fail(path, "expected apiVersion cluster.ray.io/v1 and kind RayCluster, got "
                           f"{obj.get('apiVersion')!r} {obj.get('kind')!r}")
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping):
        raise r.fail(f"{path}.metadata", f"expected a mapping, got {_show(meta)}")
    r.object_name(meta.get("name"), f"{path}.metadata.name")
    if "namespace" in meta:
        r.namespace(meta["namespace"], f"{path}.metadata.namespace")
    if not isinstance(obj.get("spec"), Mapping):
        raise r.fail(f"{path}.spec", f"expected a mapping, got {_show(obj.get('spec'))}")
    out = copy.deepcopy(dict(obj))
    out["metadata"] = dict(out["metadata"])
    out["metadata"].setdefault("namespace", "default")
    return out


def _expect(r: _Reader, value: object, path: str) -> Expectation:
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
                         f"expected one of {list(phases)}, got {_show(e['phase'])}")
        checks["phase"] = e["phase"]
    if "workers" in e:
        w = e["workers"]
        if not isinstance(w, Mapping):
            raise r.fail(f"{path}.workers",
                         f"expected a mapping of pod types to counts, got {_show(w)}")
        checks["workers"] = {str(k): r.integer(v, f"{path}.workers.{k}") for k, v in w.items()}
    if not checks:
        raise r.fail(path, "expected at least one of pods, workers, phase, restarts, services")
    return Expectation(at=duration(e.get("at", 0), r.source, f"{path}.at"),
                       cluster=r.cluster(e.get("cluster"), f"{path}.cluster"), checks=checks)


def _check_references(r: _Reader, timeline: tuple[Step, ...], expect: tuple[Expectation, ...],
                      operators: set[str]) -> None:
    known: set[str] = set()
    for step in sorted(timeline, key=lambda s: (s.at, s.index)):
        path = f"timeline[{step.index}]"
        if step.kind == "apply":
            meta = step.args["metadata"]
            known.add(f"{meta['namespace']}/{meta['name']}")
        elif step.kind in OPERATOR_STEPS and step.args not in operators:
            raise r.fail(f"{path}.{step.kind}",
                         f"expected one of the operators {sorted(operators)}, got {step.args!r}")
        elif step.kind in ("watch_cut", "api_faults") and step.args["operator"] and (
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
