"""Observed facts: everything the core learns arrives as one of these frozen values.

Each event carries `at`, the time (seconds) at which the driver observed it: the core has no
clock of its own. Events are facts about the world (a pod was seen, a load report came in,
an action the core asked for succeeded or failed), never commands. A pod event carries the
projection of a Pod that the core needs, not the Pod: the adapters build it from labels.

Events are `slots` classes so that the hottest one, `PodSeen`, can serve as the stored pod
record itself (no copy per event); see `engine.state`.
"""

from __future__ import annotations

import copyreg
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, get_args

ClusterKey = tuple[str, str]
"""(namespace, name) of a RayCluster."""

# Pod phases as Kubernetes reports them.
PENDING = "Pending"
RUNNING = "Running"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
UNKNOWN = "Unknown"
DEAD_PHASES = frozenset({SUCCEEDED, FAILED, UNKNOWN})

HEAD = "head"
WORKER = "worker"


@dataclass(frozen=True, kw_only=True, slots=True)
class ClusterSeen:
    """A RayCluster was listed, added or modified (any field; the core checks generation)."""

    cluster: ClusterKey
    at: float
    uid: str
    generation: int
    obj: Mapping[str, Any] = field(compare=False, repr=False)


@dataclass(frozen=True, kw_only=True, slots=True)
class ClusterDeleted:
    """A RayCluster is gone (or being deleted): no action for it any more."""

    cluster: ClusterKey
    at: float


@dataclass(frozen=True, kw_only=True, slots=True)
class PodSeen:
    """A pod of a RayCluster was listed, added or modified (projection of the Pod)."""

    cluster: ClusterKey
    at: float
    name: str
    pod_type: str
    role: str  # HEAD or WORKER
    phase: str
    ip: str = ""
    terminating: bool = False  # deletionTimestamp is set
    launch_hash: str = ""
    uid: str = ""  # deletes carry it as a precondition: never another pod of the same name
    created: float = -1.0  # metadata.creationTimestamp, seconds (-1: not known)
    waiting: str = ""  # why it is not running, from its status ("Unschedulable: ...")

    @property
    def live(self) -> bool:
        return not self.terminating and self.phase not in DEAD_PHASES


@dataclass(frozen=True, kw_only=True, slots=True)
class PodGone:
    """A pod of a RayCluster no longer exists."""

    cluster: ClusterKey
    at: float
    name: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Bundle:
    """A resource shape and how many of it (Ray reports demand grouped this way)."""

    resources: Mapping[str, float] = field(compare=False)
    count: int = 1

    @property
    def shape(self) -> tuple[tuple[str, float], ...]:
        return tuple(sorted(self.resources.items()))


@dataclass(frozen=True, kw_only=True, slots=True)
class PlacementGroup:
    """A pending placement group: its strategy and its unplaced bundles."""

    strategy: str  # PACK | SPREAD | STRICT_PACK | STRICT_SPREAD
    bundles: tuple[Mapping[str, float], ...] = field(compare=False)


@dataclass(frozen=True, kw_only=True, slots=True)
class RayNode:
    """A Ray node as the GCS reports it; `ip` joins it to its pod."""

    ip: str
    total: Mapping[str, float] = field(compare=False)
    available: Mapping[str, float] = field(compare=False)
    idle_seconds: float = 0.0


@dataclass(frozen=True, kw_only=True, slots=True)
class RayLoad:
    """One load report of a cluster's Ray head (every 5 s in Ray's autoscaler loop).

    The demand (`pending`, `requests`, `placement_groups`) is always complete. The nodes are
    complete too unless `partial`: then `nodes` holds only the nodes whose state changed since
    the previous report and `gone` the IPs of nodes that left. Reporters send deltas to keep
    a 1,000-node cluster's report small when little changed; `idle_seconds` is as of `at`.
    """

    cluster: ClusterKey
    at: float
    pending: tuple[Bundle, ...] = ()
    requests: tuple[Bundle, ...] = ()  # ray.autoscaler.sdk.request_resources
    placement_groups: tuple[PlacementGroup, ...] = ()
    nodes: tuple[RayNode, ...] = ()
    partial: bool = False
    gone: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class RayUnreachable:
    """The cluster's Ray head could not be read past its grace period: autoscaling failed."""

    cluster: ClusterKey
    at: float
    reason: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Tick:
    """Time passed; timers due at or before `at` fire."""

    at: float


@dataclass(frozen=True, kw_only=True, slots=True)
class Synced:
    """The driver has delivered the initial lists of its scope: decisions may start.

    Until then the state may lack pods that exist, and planning could duplicate them.
    """

    at: float


@dataclass(frozen=True, kw_only=True, slots=True)
class ServiceGone:
    """The head Service of a cluster was deleted (by someone else): create it again."""

    cluster: ClusterKey
    at: float


@dataclass(frozen=True, kw_only=True, slots=True)
class LeaseSeen:
    """An operator install's Lease in one namespace (its liveness there, `engine.claims`).

    `renewed` is the Lease's renewTime as written: only its changes matter, timed on the
    observer's clock (`at`), so clocks of different machines are never compared.
    """

    namespace: str
    install: str
    at: float
    renewed: str
    seconds: float
    instance: str = ""  # the process that renewed it last ("" when not written)


@dataclass(frozen=True, kw_only=True, slots=True)
class LeaseGone:
    """An install's Lease in one namespace was deleted: that install released it (uninstall)."""

    namespace: str
    install: str
    at: float


DONE = "done"
FAILED_OUTCOME = "failed"
CONFLICT = "conflict"
REJECTED = "rejected"  # the request itself is wrong (400, 413, 415, 422): it fails again
FORBIDDEN = "forbidden"  # 403: RBAC, a quota or a policy refuses it for now
REFUSED = "refused"  # Ray refused to drain a node: work runs on it (the pod is kept)


@dataclass(frozen=True, kw_only=True, slots=True)
class ActionResult:
    """What became of an action: `done`, `failed` (with reason), `conflict` (HTTP 409; for
    the head Service: a Service of its name that is not the cluster's), `rejected` (the API
    refused the request as it is), `forbidden` (HTTP 403) or, for a drain, `refused` (Ray
    keeps the node: it is busy; the reason is Ray's).

    `action` names it as `<ActionType>/<target>` (see `engine.actions.Action.ref`); a
    lease renewal's result names `(namespace, "")` as its cluster.
    """

    cluster: ClusterKey
    at: float
    action: str
    outcome: str
    reason: str = ""


Event = (
    ClusterSeen | ClusterDeleted | PodSeen | PodGone | RayLoad | RayUnreachable | Tick
    | ActionResult | Synced | ServiceGone | LeaseSeen | LeaseGone
)

T = TypeVar("T")


def copyable(*classes: type) -> None:
    """Copy and pickle these frozen dataclasses by building a new value from their fields.

    The compiled build (mypyc, `setup.py`) cannot restore a frozen dataclass through
    `__setstate__` (its `__setattr__` refuses), so `copy.deepcopy` and `pickle` of a state
    holding events would fail there; building the value again works in both builds."""
    for cls in classes:
        copyreg.pickle(cls, _reduce)


def _reduce(value: Any) -> tuple[Any, tuple[type, dict[str, Any]]]:
    return _rebuild, (type(value), {f.name: getattr(value, f.name)
                                    for f in dataclasses.fields(value)})


def _rebuild(cls: type[T], fields: dict[str, Any]) -> T:
    return cls(**fields)


copyable(*get_args(Event), Bundle, PlacementGroup, RayNode)
