"""The records the engine keeps: one `ClusterState` per RayCluster, inside one `State`.

Plain data with no behaviour beyond naming: the folds that change them live by concern in
`engine.pods` (pods and the counters derived from them), `engine.load` (Ray's reports),
`engine.claiming` (claims, leases, peers), `engine.results` (what became of actions) and
`engine.state` (the cluster objects, timers and `evolve`, which dispatches to them).

Fields marked "derived" are recomputed from the others (a snapshot does not save them);
fields marked "memo" are caches `plan` may fill, which change no decision and are skipped
by snapshots too (`engine.snapshots`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from engine import claims
from engine import events as ev
from engine import spec as specs
from engine.phases import Phase

BACKOFF_START = 10.0


BACKOFF_CAP = 300.0


BACKOFF_RESET_AFTER = 300.0  # Running this long forgives earlier failures.


CREATE_EXPECTATION_TTL = 300.0  # an acknowledged create never observed is forgotten after this


RETRY_AFTER_FAILURE = 1.0  # the first retry of a cluster whose call failed; then doubling


RETRY_CAP = 60.0


STATUS_PERIOD = 5.0  # worker counts in the status are written at most this often


SERVICE_RECHECK = 60.0  # a head Service name taken by another object is tried again after


class Signature(NamedTuple):
    """What of a status makes it worth writing at once (worker counts are written at most
    every few seconds)."""

    phase: Phase
    retries: int
    generation: int
    problems: str  # why the cluster is in phase Error
    head_ready: bool
    manager: str  # the install its claim names
    conflict: str  # the ownership conflict shown ("" for none)
    service_conflict: str = ""  # why the head Service is not this cluster's ("" for none)
    infeasible: str = ""  # demand no pod type can hold (`engine.demand`; "" for none)
    held_reason: str = ""  # why demand waits ("" when none does)


class Sent(NamedTuple):
    """The last status written: its signature, the worker counts and the demand it showed."""

    signature: Signature
    counts: dict[str, int]
    demand: Any = None  # the `engine.demand.Note` it showed (None: none)


@dataclass(slots=True)
class Creating:
    """A create the operator issued and has not yet seen as a pod."""

    pod_type: str
    role: str
    issued_at: float
    acked: bool = False


@dataclass(slots=True)
class ClusterState:
    """Everything known about one RayCluster and its pods."""

    key: ev.ClusterKey
    seq: int = 0  # order of first sight: plans list clusters in this order
    uid: str = ""
    generation: int = 0
    obj: Any = None  # the last RayCluster object seen (kept for snapshots)
    spec: specs.ClusterSpec | None = None
    problems: str = ""  # why the cluster is in phase Error ("" when it is not)
    error_reason: str = ""  # InvalidSpec | InternalError | RejectedByApiServer
    broken: bool = False  # a fault left the counters unsure: rebuilt before it runs again
    phase: Phase = Phase.NONE
    retries: int = 0
    failures: int = 0
    backoff_until: float = 0.0
    running_since: float = -1.0
    pods: dict[str, ev.PodSeen] = field(default_factory=dict)
    creating: dict[str, Creating] = field(default_factory=dict)
    deleting: dict[str, float] = field(default_factory=dict)
    live: dict[str, int] = field(default_factory=dict)  # live workers per type (not being deleted)
    live_total: int = 0
    outdated: int = 0  # live workers of an unknown type or an old launch config
    oldest_use: float = math.inf  # the least recent last-use time of any idle worker ...
    idle_stale: bool = False  # ... unless its node left since (memo: `least_recent_use`)
    # IP -> (node, when)
    ray_nodes: dict[str, tuple[ev.RayNode, float]] = field(default_factory=dict)
    # free resources summed over ray_nodes
    free_total: dict[str, float] = field(default_factory=dict)
    node_free: dict[str, Mapping[str, float]] = field(default_factory=dict)  # IP -> free (derived)
    # reported IP with a live pod -> type (derived)
    joined: dict[str, str] = field(default_factory=dict)
    connected: dict[str, int] = field(default_factory=dict)  # joined IPs per pod type (derived)
    idle_since: dict[str, float] = field(default_factory=dict)  # IP -> idle since (idle workers)
    templates: dict[Any, Any] = field(default_factory=dict)  # pod templates (memo)
    types_memo: Any = None  # the last pass's (runtime resources, node types) (memo)
    inflight: dict[str, int] = field(default_factory=dict)  # worker creates in flight per type
    head: str = ""  # the live head pod, if any
    head_creating: str = ""  # a head create in flight, if any
    head_running: bool = False
    head_current: bool = False  # the head pod is of the spec's head type and launch config
    restart_head: bool = False  # the head must be replaced (autoscaling failed)
    dead: dict[str, None] = field(default_factory=dict)  # dead pods still present (to delete)
    counter: int = 0
    # live pods not being deleted, by IP
    live_ips: dict[str, ev.PodSeen] = field(default_factory=dict)
    load: ev.RayLoad | None = None
    load_fresh: bool = False  # the last load report has not been planned on yet
    settled: bool = False  # the last plan found nothing to do (memo: `load_changes_nothing`)
    idle_timeout: float = math.inf  # the spec's, in seconds (derived with `spec`: read often)
    service: str = ""  # signature of the head Service last applied ("" = none)
    service_inflight: str = ""
    status_sent: Sent | None = None
    status_sent_at: float = -math.inf
    needs_update: bool = True
    wake_pending: float = math.inf  # the earliest timer the planner asked for (Requeue)
    expiry_at: float = math.inf  # when the oldest acknowledged create expires
    announce: float = math.inf  # the earliest timer not yet announced as a Requeue
    head_ready_since: float = 0.0
    spec_valid_since: float = 0.0
    claim: claims.Claim | None = None  # the cluster's ownership claim (engine.claims)
    claim_rv: str = ""  # the resourceVersion the claim was read at (the write precondition)
    claim_since: float = 0.0  # when the current holder's claim was first seen
    claim_inflight: bool = False
    # the claim naming us being written (its fence, the resourceVersion it replaces), and
    # the fence of the last one this process wrote and saw succeed, and the version replaced
    claim_writing: tuple[str, str] | None = None
    claim_confirmed: str = ""
    claim_replaced: str = ""
    retry_at: float = -math.inf  # after a failed call, nothing is written before this
    service_conflict: str = ""  # why a Service of the head Service's name is not ours
    service_conflict_since: float = 0.0
    service_retry_at: float = -math.inf  # the head Service is applied again from then
    claim_refused: str = ""  # the resourceVersion at which the API refused our claim
    # (Event type, reason, message) to tell at the next plan
    notices: list[tuple[str, str, str]] = field(default_factory=list)
    told: dict[str, None] = field(default_factory=dict)  # keys of notices told (not again)
    failed_calls: int = 0  # consecutive failed calls (the retry delay doubles with each)
    contended: str = ""  # the holder this install last reported a conflict against
    asked_at: float = -math.inf  # when this install last asked for a hand-over
    contended_at: float = -math.inf  # when it last wrote itself in as a contender
    # workers drained before their delete (`engine.drains`): asked (pod -> why it goes),
    # accepted by Ray (pod -> why), refused (pod -> when it may be asked again)
    draining: dict[str, str] = field(default_factory=dict)
    drained: dict[str, str] = field(default_factory=dict)
    held: dict[str, float] = field(default_factory=dict)
    # pods that never start (`engine.stuck`): failures in a row and unavailability per type,
    # and the earliest time an unstarted worker seen could be stuck
    type_failures: dict[str, int] = field(default_factory=dict)
    unavailable: dict[str, float] = field(default_factory=dict)
    stuck_due: float = -math.inf
    failed: list[tuple[str, str]] = field(default_factory=list)  # the last stuck (pod, type)
    feasible_since: float = 0.0  # when the status's DemandFeasible last flipped (0: not yet)
    met_since: float = 0.0  # ... and DemandMet

    @property
    def name(self) -> str:
        return self.key[1]

    @property
    def namespace(self) -> str:
        return self.key[0]


@dataclass(slots=True)
class OwnLease:
    """This install's Lease in one namespace: when it was last renewed (the fence reads it)."""

    renewed_at: float = -math.inf
    due: float = -math.inf
    issued_at: float = 0.0
    inflight: bool = False


@dataclass(slots=True)
class Peer:
    """Another install's Lease in one namespace, as this install observed it."""

    renewed: str
    observed_at: float  # when `renewed` last changed, on this install's clock
    seconds: float
    gone: bool = False


@dataclass(slots=True)
class Rival:
    """A newer process of this same install, renewing its lease in one namespace (this
    process stands down there while it is alive: `engine.claims`, one name, one actor)."""

    instance: str
    renewed: str
    observed_at: float  # when `renewed` last changed, on this process's clock
    seconds: float
    told: bool = False  # the stand-down was logged

    @property
    def until(self) -> float:
        return self.observed_at + self.seconds


@dataclass(slots=True)
class State:
    """All clusters in the operator's view, what is due, and what changed since the last plan."""

    clusters: dict[ev.ClusterKey, ClusterState] = field(default_factory=dict)
    dirty: dict[ev.ClusterKey, None] = field(default_factory=dict)
    timers: list[tuple[float, int, ev.ClusterKey]] = field(default_factory=list)
    timer_seq: int = 0
    cluster_seq: int = 0
    now: float = 0.0
    synced: bool = False
    exhaustive: bool = False  # reference mode: plan every cluster, take no shortcut
    install: claims.Install | None = None  # None: act on every cluster seen (no claims)
    own_leases: dict[str, OwnLease] = field(default_factory=dict)  # by namespace
    lease_due: float = math.inf  # the earliest renewal due
    peers: dict[tuple[str, str], Peer] = field(default_factory=dict)  # (namespace, install)
    namespaces: dict[str, int] = field(default_factory=dict)  # clusters seen per namespace
    faults: list[str] = field(default_factory=list)  # contained outside clusters, to log
    farewells: list[ev.ClusterKey] = field(default_factory=list)  # deleted, to log
    rivals: dict[str, Rival] = field(default_factory=dict)  # by namespace
