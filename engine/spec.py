"""The RayCluster custom resource as frozen values, and every rule it must satisfy.

`from_raycluster(obj)` takes the dict the Kubernetes API returns for a `cluster.ray.io/v1`
RayCluster and returns a `ClusterSpec`, or raises one `InvalidSpec` that lists *every*
problem with its field path (`spec.podTypes[1].minWorkers: 5 > maxWorkers 3`). Collecting
all problems at once spares users the fix-one-reapply-find-the-next loop.

Rules beyond the CRD's structural schema (see docs/decisions.md for the reasoning):
- `headPodType` names a podType; podType names are unique label values.
- per type `0 <= minWorkers <= maxWorkers`; the sum of `minWorkers` <= `maxWorkers`.
- an omitted global `maxWorkers` is the sum of the per-type maxima; an omitted
  per-type `maxWorkers` is the global one when given, else the type's `minWorkers`.
- `upscalingSpeed > 0`; `idleTimeoutMinutes >= 0`.
- `workerStartTimeoutMinutes >= 0` (default 10, Ray's): a worker not running and joined
  to Ray this long after its creation is replaced (`engine.stuck`; 0: never).
- `rollingUpdate.maxUnavailable >= 1` and `rollingUpdate.maxSurge >= 0` (default 1 each):
  how many outdated workers are replaced at a time (`engine.autoscaler`).
- quantities parse; `podConfig.spec.containers` is a non-empty list of named images.
- the cluster name is a DNS-1123 label short enough for `<name>-ray-head`.
- unknown fields are rejected; a custom Redis password is rejected (legacy).

Ray resources per type follow the legacy auto-detection (`engine.resources`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
from attrs import field, frozen

from engine import checks, podconfig
from engine import resources as ray_resources
from engine.checks import Checker
from engine.errors import InvalidSpec
from engine.ports import (
    DEFAULT_HEAD_PORT,
    ServicePort,
    default_head_commands,
    default_worker_commands,
    infer_head_port,
    service_ports,
)

API_VERSION = "cluster.ray.io/v1"
KIND = "RayCluster"

DEFAULT_UPSCALING_SPEED = 1.0
DEFAULT_IDLE_TIMEOUT_MINUTES = 5.0
DEFAULT_WORKER_START_TIMEOUT_MINUTES = 10.0
DEFAULT_MAX_UNAVAILABLE = 1
DEFAULT_MAX_SURGE = 1
_ROLLING_FIELDS = frozenset({"maxUnavailable", "maxSurge"})
SERVICE_SUFFIX = "-ray-head"
MAX_WORKERS = 100_000
"""The most workers of a cluster or of a pod type (bounds above it are refused: a minimum of
a billion would make one decision a billion pod creates)."""
MAX_UPSCALING_SPEED = 1e6
MAX_IDLE_TIMEOUT_MINUTES = 1e7
MAX_POD_TYPES = 100



_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_MAX_CLUSTER_NAME = 63 - len(SERVICE_SUFFIX)

_SPEC_FIELDS = frozenset(
    {
        "maxWorkers",
        "upscalingSpeed",
        "idleTimeoutMinutes",
        "rollingUpdate",
        "workerStartTimeoutMinutes",
        "headServicePorts",
        "headPodType",
        "podTypes",
        "headStartRayCommands",
        "workerStartRayCommands",
    }
)
_BOUNDS = frozenset({"minWorkers", "maxWorkers"})
_POD_TYPE_FIELDS = frozenset(
    {"name", "minWorkers", "maxWorkers", "rayResources", "setupCommands",
     "workerSetupCommands", "podConfig"}
)


@frozen(kw_only=True)
class PodType:
    """A node type: its bounds, the resources it advertises to Ray, and its pod template."""

    name: str
    min_workers: int
    max_workers: int
    resources: Mapping[str, float] = field(eq=False)
    setup_commands: tuple[str, ...]
    pod_config: Mapping[str, Any] = field(eq=False, repr=False)
    launch_hash: str
    generate_name: str
    source: Mapping[str, Any] = field(eq=False, repr=False, factory=dict)  # raw, less bounds

    @property
    def gpu(self) -> bool:
        return self.resources.get("GPU", 0) > 0


@frozen(kw_only=True, slots=False)
class ClusterSpec:
    """A validated RayCluster: identity plus the effective autoscaling configuration."""

    name: str
    namespace: str
    uid: str
    generation: int
    max_workers: int
    upscaling_speed: float
    idle_timeout_minutes: float
    worker_start_timeout_minutes: float = DEFAULT_WORKER_START_TIMEOUT_MINUTES
    max_unavailable: int = DEFAULT_MAX_UNAVAILABLE  # outdated workers replaced at a time
    max_surge: int = DEFAULT_MAX_SURGE  # replacements started ahead, to keep minWorkers
    head_pod_type: str
    pod_types: Mapping[str, PodType] = field(eq=False)
    head_service_ports: tuple[ServicePort, ...]
    head_start_ray_commands: tuple[str, ...]
    worker_start_ray_commands: tuple[str, ...]
    head_port: int

    @property
    def head(self) -> PodType:
        return self.pod_types[self.head_pod_type]

    @functools.cached_property
    def service_key(self) -> str:
        """What the head Service is made from; equal keys need no new apply."""
        return f"{self.uid}|{self.name}|{self.head_service_ports!r}"

    @property
    def service_name(self) -> str:
        return self.name + SERVICE_SUFFIX

    @property
    def idle_timeout_seconds(self) -> float:
        return 60.0 * self.idle_timeout_minutes


def from_raycluster(obj: Mapping[str, Any], *, previous: ClusterSpec | None = None
                    ) -> ClusterSpec:
    """Read and validate a RayCluster object; raise `InvalidSpec` listing every problem.

    `previous` (the last valid spec of the same cluster) lets a pod type whose definition
    did not change apart from its bounds reuse what was read of it before: a `helm upgrade`
    of `minWorkers` does not re-parse and re-hash every pod template.
    """
    check = Checker()
    shape = checks.shape_problem(obj)
    if shape is not None:
        where, _, why = shape.rpartition(": ")
        check.add(where or "object", why)
        raise InvalidSpec(tuple(check.problems), whole=True)
    root = check.mapping(obj, "object")
    if root.get("apiVersion", API_VERSION) != API_VERSION:
        check.add("apiVersion",
                  f"expected {API_VERSION!r}, got {checks.show(root.get('apiVersion'))}")
    if root.get("kind", KIND) != KIND:
        check.add("kind", f"expected {KIND!r}, got {checks.show(root.get('kind'))}")
    meta = check.mapping(root.get("metadata"), "metadata")
    name = _cluster_name(check, meta.get("name"))
    namespace = check.string(meta.get("namespace", "default"), "metadata.namespace") or ""
    uid = str(meta.get("uid", ""))
    generation = meta.get("generation", 1)
    generation = generation if isinstance(generation, int) else 1
    spec = check.mapping(root.get("spec"), "spec")
    check.unknown(spec, _SPEC_FIELDS, "spec")

    global_max = None
    if "maxWorkers" in spec:
        global_max = check.integer(spec["maxWorkers"], "spec.maxWorkers", maximum=MAX_WORKERS)
    speed = DEFAULT_UPSCALING_SPEED
    if "upscalingSpeed" in spec:
        value = check.number(spec["upscalingSpeed"], "spec.upscalingSpeed",
                             maximum=MAX_UPSCALING_SPEED)
        if value is not None and not value > 0:
            check.add("spec.upscalingSpeed", f"expected a number > 0, got {spec['upscalingSpeed']}")
        speed = value if value is not None and value > 0 else speed
    idle = _minutes(check, spec, "idleTimeoutMinutes", DEFAULT_IDLE_TIMEOUT_MINUTES)
    start_timeout = _minutes(check, spec, "workerStartTimeoutMinutes",
                             DEFAULT_WORKER_START_TIMEOUT_MINUTES)
    unavailable, surge = _rolling_update(check, spec.get("rollingUpdate"))

    head_cmds = check.strings(spec.get("headStartRayCommands"), "spec.headStartRayCommands")
    worker_cmds = check.strings(spec.get("workerStartRayCommands"), "spec.workerStartRayCommands")
    for i, cmd in enumerate(head_cmds):
        if "redis-password" in cmd:
            check.add(
                f"spec.headStartRayCommands[{i}]",
                "the Ray Kubernetes Operator does not support setting a custom Redis password",
            )
    head_port = infer_head_port(head_cmds)
    if not 1 <= head_port <= 65535:
        check.add("spec.headStartRayCommands", "the head's --port must be between 1 and 65535")
        head_port = DEFAULT_HEAD_PORT
    head_cmds = head_cmds or default_head_commands(head_port)
    worker_cmds = worker_cmds or default_worker_commands(head_port)
    ports = service_ports(check, spec.get("headServicePorts"), head_port)

    head_type = check.string(spec.get("headPodType"), "spec.headPodType")
    raw_types = spec.get("podTypes")
    if not isinstance(raw_types, list) or not raw_types:
        check.add("spec.podTypes",
                  f"expected a non-empty list of podTypes, got {checks.show(raw_types)}")
        raw_types = []
    elif len(raw_types) > MAX_POD_TYPES:
        check.add("spec.podTypes", f"expected at most {MAX_POD_TYPES} podTypes, got "
                                   f"{len(raw_types)}")
        raw_types = []
    types = _pod_types(check, raw_types, global_max, head_type, head_cmds, worker_cmds,
                       previous.pod_types if previous is not None else {},
                       cluster=name, namespace=namespace)
    if head_type is not None and raw_types and head_type not in types:
        names = [t.get("name") for t in raw_types if isinstance(t, Mapping)]
        check.add("spec.headPodType",
                  f"{head_type!r} names no podType; expected one of {checks.show(names)}")
    effective_max = global_max
    if effective_max is None:
        effective_max = sum(t.max_workers for n, t in types.items() if n != head_type)
    total_min = sum(t.min_workers for t in types.values())
    if total_min > effective_max:
        check.add("spec.maxWorkers", f"sum of minWorkers {total_min} > maxWorkers {effective_max}")
    if check.problems:
        raise InvalidSpec(tuple(check.problems))
    assert head_type is not None
    return ClusterSpec(
        name=name,
        namespace=namespace,
        uid=uid,
        generation=generation,
        max_workers=effective_max,
        upscaling_speed=speed,
        idle_timeout_minutes=idle,
        worker_start_timeout_minutes=start_timeout,
        max_unavailable=unavailable,
        max_surge=surge,
        head_pod_type=head_type,
        pod_types=types,
        head_service_ports=ports,
        head_start_ray_commands=head_cmds,
        worker_start_ray_commands=worker_cmds,
        head_port=head_port,
    )


def _minutes(check: Checker, spec: Mapping[str, Any], key: str, default: float) -> float:
    """A number of minutes >= 0 at `spec.<key>`, or `default` when absent or wrong."""
    if key not in spec:
        return default
    value = check.number(spec[key], f"spec.{key}", maximum=MAX_IDLE_TIMEOUT_MINUTES)
    if value is not None and value < 0:
        check.add(f"spec.{key}", f"expected a number >= 0, got {value:g}")
    return value if value is not None and value >= 0 else default


def _rolling_update(check: Checker, value: object) -> tuple[int, int]:
    """`spec.rollingUpdate`: (maxUnavailable, maxSurge), their defaults when left out."""
    if value is None:
        return DEFAULT_MAX_UNAVAILABLE, DEFAULT_MAX_SURGE
    raw = check.mapping(value, "spec.rollingUpdate")
    check.unknown(raw, _ROLLING_FIELDS, "spec.rollingUpdate")
    unavailable = DEFAULT_MAX_UNAVAILABLE
    if "maxUnavailable" in raw:
        unavailable = check.integer(raw["maxUnavailable"], "spec.rollingUpdate.maxUnavailable",
                                    minimum=1, maximum=MAX_WORKERS) or unavailable
    surge = DEFAULT_MAX_SURGE
    if "maxSurge" in raw:
        found = check.integer(raw["maxSurge"], "spec.rollingUpdate.maxSurge", minimum=0,
                              maximum=MAX_WORKERS)
        surge = surge if found is None else found
    return unavailable, surge


def _cluster_name(check: Checker, value: object) -> str:
    name = check.string(value, "metadata.name")
    if name is None:
        return ""
    if not _DNS_LABEL.match(name) or len(name) > _MAX_CLUSTER_NAME:
        check.add(
            "metadata.name",
            f"{name!r} is not a DNS-1123 label of at most {_MAX_CLUSTER_NAME} characters "
            "(lower-case letters, digits and '-')",
        )
    return name


def _pod_types(
    check: Checker,
    raw_types: list[Any],
    global_max: int | None,
    head_type: str | None,
    head_cmds: tuple[str, ...],
    worker_cmds: tuple[str, ...],
    previous: Mapping[str, PodType],
    *,
    cluster: str,
    namespace: str,
) -> dict[str, PodType]:
    types: dict[str, PodType] = {}
    for i, raw in enumerate(raw_types):
        path = f"spec.podTypes[{i}]"
        item = check.mapping(raw, path)
        check.unknown(item, _POD_TYPE_FIELDS, path)
        type_name = check.string(item.get("name"), f"{path}.name")
        if type_name is not None:
            check.rule(type_name, f"{path}.name", checks.label_value(type_name))
        if type_name is not None and type_name in types:
            check.add(f"{path}.name", f"duplicate podType name {type_name!r}")
        is_head = type_name == head_type
        low = check.integer(item.get("minWorkers", 0), f"{path}.minWorkers",
                            maximum=MAX_WORKERS)
        low = low if low is not None else 0
        if "maxWorkers" in item:
            high = check.integer(item["maxWorkers"], f"{path}.maxWorkers",
                                 maximum=MAX_WORKERS)
        elif is_head:
            high = low  # the head type has no workers unless asked (legacy default 0)
        else:
            high = low if global_max is None else global_max
        high = high if high is not None else low
        if low > high:
            check.add(f"{path}.minWorkers", f"{low} > maxWorkers {high}")
        start = head_cmds if is_head else worker_cmds
        source = {k: v for k, v in item.items() if k not in _BOUNDS}
        source["start"] = start
        old = previous.get(type_name) if type_name is not None else None
        if old is not None and type_name is not None and old.source == source \
                and type_name not in types:
            types[type_name] = attrs.evolve(old, min_workers=low, max_workers=high)
            continue
        setup = check.strings(item.get("setupCommands"), f"{path}.setupCommands")
        alias = check.strings(item.get("workerSetupCommands"), f"{path}.workerSetupCommands")
        if setup and alias and setup != alias:
            check.add(f"{path}.workerSetupCommands", "differs from setupCommands (its alias)")
        setup = setup or alias
        generate_name = _generate_name(item.get("podConfig"), type_name or "pod")
        before = len(check.problems)
        pod_config = podconfig.read(check, item.get("podConfig"), f"{path}.podConfig",
                                    cluster=cluster, namespace=namespace,
                                    prefix=f"{cluster}-{generate_name}")
        readable = len(check.problems) == before  # else its resources are not read
        resources = ray_resources.of_pod_type(check, pod_config if readable else {},
                                              item.get("rayResources"), path)
        if type_name is None or type_name in types:
            continue
        types[type_name] = PodType(
            name=type_name,
            min_workers=low,
            max_workers=high,
            resources=resources,
            setup_commands=setup,
            pod_config=pod_config,
            launch_hash=launch_hash(pod_config, setup, start),
            generate_name=generate_name,
            source=source,
        )
    return types


def launch_hash(config: Mapping[str, Any], setup: Sequence[str], start: Sequence[str]) -> str:
    """A stable digest of what a pod is launched from; a change marks its pods outdated.

    `rayResources` and the worker bounds are deliberately outside it: editing them applies
    live without replacing pods, as in the legacy operator.
    """
    text = json.dumps(
        {"podConfig": config, "setup": list(setup), "start": list(start)},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _generate_name(config: object, type_name: str) -> str:
    meta = config.get("metadata") if isinstance(config, Mapping) else None
    prefix = meta.get("generateName") if isinstance(meta, Mapping) else None
    if isinstance(prefix, str) and prefix:
        return prefix if prefix.endswith("-") else prefix + "-"
    return kebab(type_name) + "-"


def kebab(name: str) -> str:
    """`rayWorkerType` -> `ray-worker-type`, as Helm's kebabcase."""
    out = re.sub(r"([a-z0-9])([A-Z])", r"\1-\2", name)
    out = re.sub(r"[^A-Za-z0-9]+", "-", out)
    return out.strip("-").lower() or "pod"
