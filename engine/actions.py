"""Decisions as values: what the core wants done; the driver turns them into API calls.

Every action names its cluster, and `ref` names the action for results (`ActionResult`).
Applying the same action twice changes nothing: pods have deterministic names (a second
create meets 409 AlreadyExists), deletes of a gone pod meet 404 (counted as done), the
Service is create-or-patch and status patches carry the whole desired status.

Manifests are plain dicts shared with the core's caches: executors must not mutate them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, get_args

from engine.events import ClusterKey, copyable
from engine.manifests import PodTemplate


def prefix(cluster: ClusterKey) -> str:
    """The log prefix of one cluster: `<name>,<namespace>:` as the legacy operator wrote it."""
    return f"{cluster[1]},{cluster[0]}:"


@dataclass(frozen=True, kw_only=True, slots=True)
class CreatePod:
    cluster: ClusterKey
    name: str
    pod_type: str
    role: str
    template: PodTemplate = field(compare=False, repr=False)

    @property
    def ref(self) -> str:
        return f"CreatePod/{self.name}"

    @property
    def manifest(self) -> dict[str, Any]:
        """The Pod to create (built on demand: replay and planning never need it)."""
        return self.template.manifest(self.name)


@dataclass(frozen=True, kw_only=True, slots=True)
class DeletePod:
    cluster: ClusterKey
    name: str
    pod_type: str
    reason: str  # idle | max_workers | max_workers_per_type | outdated | failed | recovery ...
    uid: str = ""  # the pod's uid, a precondition of the delete

    @property
    def ref(self) -> str:
        return f"DeletePod/{self.name}"


@dataclass(frozen=True, kw_only=True, slots=True)
class DrainNode:
    """Ask the cluster's Ray head to drain the Ray node on worker pod `name` (at `ip`) before
    the pod is deleted, as Ray's own autoscaler does: Ray refuses while work runs on the
    node, and once it accepts it places nothing new there. The answer comes back as an
    `ActionResult` (done: accepted, or no such node in Ray; refused: busy). `deadline` is
    when the operator means to delete the pod at the latest (seconds, the engine's clock):
    Ray shows it; `message` is Ray's reason message (`ray status` and Ray's logs show it)."""

    cluster: ClusterKey
    name: str
    pod_type: str
    ip: str
    reason: str  # why the pod is removed (as `DeletePod.reason`)
    message: str
    deadline: float

    @property
    def ref(self) -> str:
        return f"DrainNode/{self.name}"


@dataclass(frozen=True, kw_only=True, slots=True)
class ApplyService:
    """Create the head Service, or patch it to this manifest if it exists."""

    cluster: ClusterKey
    name: str
    manifest: Mapping[str, Any] = field(compare=False, repr=False)

    @property
    def ref(self) -> str:
        return f"ApplyService/{self.name}"


@dataclass(frozen=True, kw_only=True, slots=True)
class PatchStatus:
    """Write the whole desired `status` through the status subresource."""

    cluster: ClusterKey
    status: Mapping[str, Any] = field(compare=False)
    uid: str = ""  # preconditions: the cluster's uid ...
    fence: str = ""  # ... and its claim-holder annotation ("" = no claims)
    # what the planner built `status` from (`engine.state.signature_of(status)`), so that
    # recording the write need not read it back; not part of the action's value
    signature: tuple[Any, ...] | None = field(default=None, compare=False, repr=False)
    demand: tuple[Any, ...] | None = field(default=None, compare=False, repr=False)  # its note

    @property
    def ref(self) -> str:
        return "PatchStatus/status"


@dataclass(frozen=True, kw_only=True, slots=True)
class EmitEvent:
    """A Kubernetes Event on the RayCluster (`type` Normal or Warning, a stable `reason`).
    `uid` is the cluster's: `kubectl describe` finds an object's events by it."""

    cluster: ClusterKey
    type: str
    reason: str
    message: str
    uid: str = ""

    @property
    def ref(self) -> str:
        return f"EmitEvent/{self.reason}"


@dataclass(frozen=True, kw_only=True, slots=True)
class Log:
    """A log line about one cluster; `line` carries the `<name>,<namespace>:` prefix."""

    cluster: ClusterKey
    level: str  # INFO | WARNING | ERROR
    message: str

    @property
    def ref(self) -> str:
        return "Log/line"

    @property
    def line(self) -> str:
        if not self.cluster[1]:  # about the install, not a cluster
            return f"{self.level} {self.message}"
        return f"{prefix(self.cluster)} {self.level} {self.message}"


@dataclass(frozen=True, kw_only=True, slots=True)
class Requeue:
    """Plan this cluster again at `at` (a timer; the driver sends a `Tick` then)."""

    cluster: ClusterKey
    at: float

    @property
    def ref(self) -> str:
        return "Requeue/timer"


@dataclass(frozen=True, kw_only=True, slots=True)
class WriteClaim:
    """Write the `cluster.ray.io/claim` annotation (`engine.claims`), with the cluster's
    resourceVersion as a precondition: a 409 means someone else wrote first."""

    cluster: ClusterKey
    claim: str  # the encoded claim
    resource_version: str
    reason: str  # claim | hand-off | ask | contend | prune

    @property
    def ref(self) -> str:
        return "WriteClaim/claim"

    @property
    def fence(self) -> str:
        """The holder token the write sets (`<install>/<epoch>`, `engine.claims.Claim.fence`)."""
        body = json.loads(self.claim)
        return f"{body['install']}/{body['epoch']}"


@dataclass(frozen=True, kw_only=True, slots=True)
class RenewLease:
    """Create or renew this install's Lease in `namespace` (its liveness there)."""

    namespace: str
    install: str
    seconds: float
    rank: int
    instance: str = ""  # the renewing process (`engine.claims.Install.instance`)

    @property
    def cluster(self) -> ClusterKey:
        return (self.namespace, "")

    @property
    def ref(self) -> str:
        return f"RenewLease/{self.namespace}"


Action = (CreatePod | DeletePod | DrainNode | ApplyService | PatchStatus | EmitEvent | Log
          | Requeue | WriteClaim | RenewLease)
copyable(*get_args(Action))
EFFECTS = (CreatePod, DeletePod, DrainNode, ApplyService, PatchStatus)
"""Writes that act on a cluster: only its claim holder may make them (`engine.claims`)."""
RESULTS = (CreatePod, DeletePod, DrainNode, ApplyService, PatchStatus, WriteClaim, RenewLease)
"""Actions that call the API and report an `ActionResult`; events and logs do not."""
