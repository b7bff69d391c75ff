"""What the operator knows, and `evolve`, the one function that changes it.

The state is an aggregate of per-cluster records (`ClusterState`). `evolve(state, event)`
folds one observed fact into it; `engine.planner.plan(state, now)` reads it and returns
actions; `engine.planner.record(state, actions)` folds the decision back in as in-flight
expectations. Nothing else writes to a state.

Ownership rule (docs/decisions.md, "linear state"): `evolve` and `record` update the state
they are given and return it. A caller that needs the old value keeps a snapshot
(`engine.snapshots`), which is immutable and exact. This is what lets one core fold a
million events a second in CPython: copying 1,000 clusters per event would cost 100x more,
while determinism (same events -> same state -> same actions) does not need copies.

Incremental counters: per cluster and pod type, the number of live workers and of creates
in flight are kept up to date by every event, so deciding after a pod event never rescans a
cluster's pods (B2 in bench/). A pod's contribution to the counters is a function of the
pod record and of whether the operator is deleting it; `_account` and `_unaccount` are the
only places that apply it.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from engine import claims, errors, transitions
from engine import events as ev
from engine import spec as specs
from engine.errors import InvalidSpec
from engine.phases import Phase
from engine.transitions import Trigger

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


class Sent(NamedTuple):
    """The last status written: its signature and the worker counts it showed."""

    signature: Signature
    counts: dict[str, int]


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
    idle_stale: bool = False  # ... unless its node left since: see `least_recent_use`
    # IP -> (node, when)
    ray_nodes: dict[str, tuple[ev.RayNode, float]] = field(default_factory=dict)
    # free resources summed over ray_nodes
    free_total: dict[str, float] = field(default_factory=dict)
    node_free: dict[str, Mapping[str, float]] = field(default_factory=dict)  # IP -> free (derived)
    # reported IP with a live pod -> type (derived)
    joined: dict[str, str] = field(default_factory=dict)
    connected: dict[str, int] = field(default_factory=dict)  # joined IPs per pod type (derived)
    idle_since: dict[str, float] = field(default_factory=dict)  # IP -> idle since (idle workers)
    # memo of pod templates (derived, unsaved)
    templates: dict[Any, Any] = field(default_factory=dict)
    types_memo: Any = None  # the last pass's (runtime resources, node types) (derived, unsaved)
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
    settled: bool = False  # see `_load_changes_nothing` (derived, unsaved)
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
    notices: list[tuple[str, str]] = field(default_factory=list)  # (reason, message) to tell
    told: dict[str, None] = field(default_factory=dict)  # keys of notices told (not again)
    failed_calls: int = 0  # consecutive failed calls (the retry delay doubles with each)
    contended: str = ""  # the holder this install last reported a conflict against
    asked_at: float = -math.inf  # when this install last asked for a hand-over
    contended_at: float = -math.inf  # when it last wrote itself in as a contender

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
    rivals: dict[str, Rival] = field(default_factory=dict)  # by namespace


def initial(*, synced: bool = False, exhaustive: bool = False,
            install: claims.Install | None = None) -> State:
    """An empty state; `synced=False` holds every decision until a `Synced` event.

    `exhaustive=True` is the reference the shortcuts are tested against: every cluster is
    planned after every event and every autoscaler pass runs in full. It decides the same
    actions, slower (tests/engine/test_shortcuts.py).

    With an `install`, the engine claims clusters before acting on them and renews its
    leases (`engine.claims`); without one it acts on every cluster it is shown.
    """
    return State(synced=synced, exhaustive=exhaustive, install=install)


def evolve(state: State, event: ev.Event) -> State:
    """Fold one observed fact into the state and return it."""
    if event.at > state.now:
        state.now = event.at
    try:
        HANDLERS[type(event)](state, event)
    except Exception as exc:  # a bulkhead: see `contain`
        contain(state, event, exc)
    return state


# -- bulkheads -------------------------------------------------------------------------------


def contain(state: State, event: ev.Event, exc: Exception) -> None:
    """An event raised while it was folded. No RayCluster's content may crash the engine or
    disturb another cluster, so the fault stays with the cluster it concerns: that cluster
    goes to phase Error naming the exception (its pods are left alone, as for an invalid
    spec) until a new generation of it is seen, and every other cluster goes on. A fault
    outside any cluster (a lease, a timer) drops that event and is logged (`faults`)."""
    key = getattr(event, "cluster", None)
    cs = state.clusters.get(key) if isinstance(key, tuple) else None
    where = f"folding {type(event).__name__}"
    if cs is None:
        state.faults.append(f"{where}: {errors.describe(exc)}")
        state.dirty[("", "")] = None  # so that the next plan logs it
        return
    quarantine(state, cs, event.at, where, exc)


def quarantine(state: State, cs: ClusterState, at: float, where: str,
               exc: Exception) -> None:
    """Put `cs` in phase Error for an unexpected exception while `where` (a bulkhead)."""
    cs.broken = True
    fail(state, cs, at, "InternalError",
         f"the operator failed while {where} for this RayCluster: {errors.describe(exc)}")


def fail(state: State, cs: ClusterState, at: float, reason: str, message: str) -> None:
    """Phase Error with `message`: nothing is written for `cs` but its status (and a Warning
    Event) until a new generation of it is read. The first failure's message is kept."""
    cs.settled = False
    if cs.phase is not Phase.ERROR or not cs.problems:
        cs.problems = message
        cs.error_reason = reason
        cs.spec_valid_since = at
    cs.spec = None
    cs.head_current = False
    cs.templates = {}
    cs.types_memo = None
    if cs.phase is not Phase.ERROR:
        _move(state, cs, Trigger.SPEC_REJECTED, at)
    _mark(state, cs.key)


def rebuild(cs: ClusterState) -> None:
    """Derive every counter and index from the pod records again (after a fault, which
    may have stopped a fold half way)."""
    cs.live.clear()
    cs.live_total = 0
    cs.outdated = 0
    cs.dead.clear()
    cs.live_ips.clear()
    cs.joined.clear()
    cs.connected.clear()
    cs.head = cs.head_creating = ""
    cs.head_running = cs.head_current = False
    cs.inflight = {}
    for name, creating in cs.creating.items():
        if creating.role == ev.WORKER:
            cs.inflight[creating.pod_type] = cs.inflight.get(creating.pod_type, 0) + 1
        else:
            cs.head_creating = name
    for pod in cs.pods.values():
        _account(cs, pod)
    cs.broken = False


def cluster(state: State, key: ev.ClusterKey) -> ClusterState:
    cs = state.clusters.get(key)
    if cs is None:
        state.cluster_seq += 1
        cs = state.clusters[key] = ClusterState(key=key, seq=state.cluster_seq)
        ns = key[0]
        before = state.namespaces.get(ns, 0)
        state.namespaces[ns] = before + 1
        if state.install is not None:
            own = state.own_leases.get(ns)
            if own is None:
                state.own_leases[ns] = OwnLease()
                state.lease_due = -math.inf
            elif not before and not own.inflight:
                # Renewals stop while a namespace has no cluster (`next_lease_due`); a new
                # cluster there resumes them, or the lease would lapse and fence it forever.
                state.lease_due = min(state.lease_due, own.due)
    return cs


def wake(state: State, key: ev.ClusterKey, at: float) -> None:
    """Plan `key` again at `at`: for the end of a restart backoff, a retry or expiring
    expectations. The next plan announces it as a `Requeue` action, so the driver knows when
    to send a `Tick`; recording that action sets the timer (`push_timer`). Full autoscaler
    passes follow load reports, as Ray's follow its 5 s load cycle."""
    cs = state.clusters.get(key)
    if cs is not None and at < cs.announce:
        cs.announce = at
        _mark(state, key)


def push_timer(state: State, key: ev.ClusterKey, at: float) -> None:
    """Set a timer that a `Tick` at or after `at` fires."""
    state.timer_seq += 1
    heapq.heappush(state.timers, (at, state.timer_seq, key))


def _mark(state: State, key: ev.ClusterKey) -> None:
    state.dirty[key] = None


# -- lifecycle -------------------------------------------------------------------------------


def _move(state: State, cs: ClusterState, trigger: Trigger, at: float) -> None:
    before = cs.phase
    after = transitions.next_phase(before, trigger)
    if (before, trigger) in transitions.FAILURES:
        cs.retries += 1
        if cs.running_since >= 0 and at - cs.running_since >= BACKOFF_RESET_AFTER:
            cs.failures = 0
        cs.failures += 1
        delay = min(BACKOFF_START * 2 ** (cs.failures - 1), BACKOFF_CAP)
        cs.backoff_until = at + delay
        cs.running_since = -1.0
        wake(state, cs.key, cs.backoff_until)
    if after is Phase.RUNNING and before is not Phase.RUNNING:
        cs.running_since = at
    cs.phase = after
    _settle(state, cs, at)


def _settle(state: State, cs: ClusterState, at: float) -> None:
    """State-triggered moves (h11 style): a current, Running head ends launch and recovery."""
    if cs.phase in (Phase.UPDATING, Phase.RECOVERY) and _head_current_and_running(cs):
        if cs.phase is Phase.RECOVERY and at < cs.backoff_until:
            return
        _move(state, cs, Trigger.HEAD_RUNNING, at)


def _head_current_and_running(cs: ClusterState) -> bool:
    return cs.head_current and cs.head_running and not cs.restart_head


def check_head(cs: ClusterState) -> None:
    """Derive `head_current` after the head pod or the spec changed."""
    spec = cs.spec
    if not cs.head or spec is None:
        cs.head_current = False
        return
    pod = cs.pods[cs.head]
    head = spec.pod_types.get(pod.pod_type)
    cs.head_current = (head is not None and pod.pod_type == spec.head_pod_type
                       and pod.launch_hash == head.launch_hash)


# -- cluster events --------------------------------------------------------------------------


def _cluster_seen(state: State, event: ev.ClusterSeen) -> None:
    known = state.clusters.get(event.cluster)
    if known is not None and known.obj is not None and event.uid != known.uid:
        # A new object under the same name: the old one was deleted while the operator did
        # not see it (a watch outage). Nothing known of the old one applies to the new one
        # (its pods, creates in flight, status written, restarts), so it starts afresh.
        _cluster_deleted(state, ev.ClusterDeleted(cluster=event.cluster, at=event.at))
    cs = cluster(state, event.cluster)
    cs.settled = False
    first = cs.obj is None
    cs.obj = event.obj
    if state.install is not None:
        _read_claim(state, cs, event)
    if not first and event.uid == cs.uid and event.generation == cs.generation:
        return  # status or metadata only
    cs.uid = event.uid
    cs.generation = event.generation
    if first:
        _adopt_status(cs, event.obj)
    if cs.broken:
        rebuild(cs)
    try:
        new = specs.from_raycluster(event.obj, previous=cs.spec)
    except InvalidSpec as exc:
        cs.problems = ""  # a new generation: its own problems, not the last ones
        if exc.whole:  # too deep or too big to keep and copy
            cs.obj = _stand_in(event.obj)
        fail(state, cs, event.at, "InvalidSpec", str(exc))
        return
    except Exception as exc:  # reading it failed in a way no check foresaw: a bulkhead
        cs.problems = ""
        fail(state, cs, event.at, "InternalError",
             f"the RayCluster could not be read: {errors.describe(exc)}")
        return
    old = cs.spec
    if cs.problems or old is None:
        cs.spec_valid_since = event.at
    cs.problems = ""
    cs.error_reason = ""
    head_changed = old is not None and (
        old.head_pod_type != new.head_pod_type or old.head.launch_hash != new.head.launch_hash
    )
    cs.spec = new
    cs.idle_timeout = new.idle_timeout_seconds
    check_head(cs)
    cs.templates = {}
    cs.types_memo = None
    recount(cs)
    cs.needs_update = True
    _move(state, cs, Trigger.SPEC_HEAD_CHANGED if head_changed else Trigger.SPEC_ACCEPTED,
          event.at)
    _mark(state, cs.key)


def _stand_in(obj: Any) -> dict[str, Any]:
    """What is kept of an object too deep or too big to keep: its identity and claim."""
    meta = obj.get("metadata") if isinstance(obj, Mapping) else None
    meta = meta if isinstance(meta, Mapping) else {}
    kept = {k: meta[k] for k in ("name", "namespace", "uid", "generation", "resourceVersion")
            if isinstance(meta.get(k), str | int)}
    notes = meta.get("annotations")
    if isinstance(notes, Mapping):
        kept["annotations"] = {k: v for k, v in notes.items()
                               if k in (claims.ANNOTATION, claims.FENCE) and isinstance(v, str)}
    return {"apiVersion": specs.API_VERSION, "kind": specs.KIND, "metadata": kept}


def _read_claim(state: State, cs: ClusterState, event: ev.ClusterSeen) -> None:
    meta = event.obj.get("metadata") or {}
    cs.claim_rv = str(meta.get("resourceVersion") or "")
    try:
        claim = claims.parse(event.obj)
    except claims.BadClaim:  # garbled: treated as unclaimed, so the next claim replaces it
        claim = None
    if claim != cs.claim:
        if claim is None or cs.claim is None or claim.install != cs.claim.install:
            cs.claim_since = event.at
        cs.claim = claim
        _mark(state, cs.key)


def _adopt_status(cs: ClusterState, obj: Any) -> None:
    """Carry over what an earlier operator wrote: the restart count and the status itself."""
    status = obj.get("status") if isinstance(obj, dict) else None
    if not isinstance(status, dict):
        return
    retries = status.get("autoscalerRetries")
    if isinstance(retries, int) and not isinstance(retries, bool) and retries > 0:
        cs.retries = retries
    workers = status.get("workers")
    cs.status_sent = Sent(signature_of(status),
                          dict(workers) if isinstance(workers, dict) else {})


def _cluster_deleted(state: State, event: ev.ClusterDeleted) -> None:
    if state.clusters.pop(event.cluster, None) is not None:
        state.dirty.pop(event.cluster, None)
        state.namespaces[event.cluster[0]] -= 1


# -- pod events ------------------------------------------------------------------------------


def _account(cs: ClusterState, pod: ev.PodSeen) -> None:
    if pod.name in cs.deleting:
        return
    if pod.terminating or pod.phase in ev.DEAD_PHASES:
        if not pod.terminating:
            cs.dead[pod.name] = None
        return
    if pod.ip:
        index(cs, pod.ip, pod)
    if pod.role == ev.HEAD:
        cs.head = pod.name
        cs.head_running = pod.phase == ev.RUNNING
        check_head(cs)
    else:
        _count_worker(cs, pod)


def _count_worker(cs: ClusterState, pod: ev.PodSeen) -> None:
    """A live worker joins the counters."""
    cs.live[pod.pod_type] = cs.live.get(pod.pod_type, 0) + 1
    cs.live_total += 1
    if _outdated(cs, pod):
        cs.outdated += 1


def _outdated(cs: ClusterState, pod: ev.PodSeen) -> bool:
    """A worker whose type is gone from the spec or whose launch config changed."""
    if cs.spec is None:
        return False
    t = cs.spec.pod_types.get(pod.pod_type)
    return t is None or t.launch_hash != pod.launch_hash


def recount(cs: ClusterState) -> None:
    """Recompute the outdated-worker count after the spec changed (O(pods), rare)."""
    cs.outdated = sum(
        1 for p in cs.pods.values()
        if p.role == ev.WORKER and p.live and p.name not in cs.deleting and _outdated(cs, p)
    )


def _unaccount(cs: ClusterState, pod: ev.PodSeen) -> None:
    if pod.name in cs.deleting:
        return
    if pod.terminating or pod.phase in ev.DEAD_PHASES:
        cs.dead.pop(pod.name, None)
        return
    _unindex(cs, pod)
    if pod.role == ev.HEAD:
        if cs.head == pod.name:
            cs.head = ""
            cs.head_running = False
            cs.head_current = False
    else:
        cs.live[pod.pod_type] -= 1
        cs.live_total -= 1
        if _outdated(cs, pod):
            cs.outdated -= 1


def _unindex(cs: ClusterState, pod: ev.PodSeen) -> None:
    entry = cs.live_ips.get(pod.ip) if pod.ip else None
    if entry is not None and entry.name == pod.name:
        del cs.live_ips[pod.ip]
        if pod.ip in cs.joined:
            _unjoin(cs, pod.ip)


def index(cs: ClusterState, ip: str, pod: ev.PodSeen) -> None:
    """Name `pod` as the live pod at `ip`; a node reported there joins it."""
    cs.live_ips[ip] = pod
    if ip in cs.node_free:
        _join(cs, ip, pod.pod_type)


def _join(cs: ClusterState, ip: str, pod_type: str) -> None:
    """A reported node and a live pod meet at `ip` (`joined` and `connected` follow both
    maps as they change, so a pass need not walk the report to count connected nodes)."""
    before = cs.joined.get(ip)
    if before == pod_type:
        return
    if before is not None:
        _unjoin(cs, ip)
    cs.joined[ip] = pod_type
    cs.connected[pod_type] = cs.connected.get(pod_type, 0) + 1


def _unjoin(cs: ClusterState, ip: str) -> None:
    pod_type = cs.joined.pop(ip, None)
    if pod_type is None:
        return
    left = cs.connected[pod_type] - 1
    if left:
        cs.connected[pod_type] = left
    else:
        del cs.connected[pod_type]


def rejoin(cs: ClusterState) -> None:
    """Rebuild `joined` and `connected` from the report and the IP index (after a restore)."""
    cs.joined.clear()
    cs.connected.clear()
    get = cs.live_ips.get
    for ip in cs.node_free:
        pod = get(ip)
        if pod is not None:
            _join(cs, ip, pod.pod_type)


def _pod_seen(state: State, event: ev.PodSeen) -> None:
    cs = state.clusters.get(event.cluster) or cluster(state, event.cluster)
    cs.settled = False
    name = event.name
    pods = cs.pods
    old = pods.get(name)
    pods[name] = event
    if old is None:
        if event.role == ev.WORKER and _seen_created_worker(state, cs, event):
            return
    elif event.role == ev.WORKER and _same_contribution(old, event):
        if old.ip != event.ip and not event.terminating and event.phase not in ev.DEAD_PHASES \
                and name not in cs.deleting:
            if old.ip:
                _unindex(cs, old)  # the IP index names the pod by IP; only a new IP moves it
            if event.ip:
                index(cs, event.ip, event)
        return  # e.g. Pending -> Running: nothing a decision reads has changed
    was_head = cs.head == name
    quiet = False
    if old is None:
        quiet = _first_sight(cs, event)
    else:
        _unaccount(cs, old)
    _account(cs, event)
    if event.role == ev.HEAD:
        _head_changed(state, cs, event, was_head=was_head)
    if not quiet:
        _mark(state, cs.key)


def _seen_created_worker(state: State, cs: ClusterState, event: ev.PodSeen) -> bool:
    """The first sight of a live worker this operator created (the common case, inlined):
    it moves from in flight to live. Returns False, changing nothing, for any other pod."""
    name = event.name
    creating = cs.creating.get(name)
    if (creating is None or creating.role != ev.WORKER or event.terminating
            or event.phase in ev.DEAD_PHASES or name in cs.deleting):
        return False
    del cs.creating[name]
    cs.inflight[creating.pod_type] -= 1
    if event.ip:
        index(cs, event.ip, event)
    _count_worker(cs, event)
    if not _status_waits(cs, event.at):
        state.dirty[cs.key] = None
    return True


def _status_waits(cs: ClusterState, at: float) -> bool:
    """Whether the status counts wait for a status timer already set (a worker moving from
    in flight to live then changes no decision)."""
    sent_at = cs.status_sent_at
    return (cs.status_sent is not None and cs.wake_pending <= sent_at + STATUS_PERIOD
            and at < sent_at + STATUS_PERIOD)


def _same_contribution(old: ev.PodSeen, new: ev.PodSeen) -> bool:
    """Whether two records of one worker count the same (live, dead or terminating)."""
    return (
        old.terminating == new.terminating
        and (old.phase in ev.DEAD_PHASES) == (new.phase in ev.DEAD_PHASES)
        and old.pod_type == new.pod_type
    ) or (old.terminating and new.terminating)


def _first_sight(cs: ClusterState, event: ev.PodSeen) -> bool:
    """Take a new pod in; return whether no decision can change because of it.

    A live worker the operator created moves from in flight to live: the min-workers top-up
    reads their sum, and the status counts wait for a status timer that is already set.
    """
    if event.name in cs.creating:  # ours: the name counter is already past it
        quiet = event.role == ev.WORKER and event.live and _status_waits(cs, event.at)
        _drop_creating(cs, event.name)
        return quiet
    suffix = event.name.rpartition("-")[2]
    if suffix.isdigit() and int(suffix) >= cs.counter:
        cs.counter = int(suffix) + 1
    return False


def _head_changed(state: State, cs: ClusterState, pod: ev.PodSeen, *, was_head: bool) -> None:
    if cs.spec is None or cs.phase is Phase.NONE:
        return
    if cs.head == pod.name:
        if cs.head_running:
            _settle(state, cs, pod.at)
        return
    if was_head and pod.name not in cs.deleting:
        _move(state, cs, Trigger.HEAD_LOST, pod.at)


def _pod_gone(state: State, event: ev.PodGone) -> None:
    cs = state.clusters.get(event.cluster)
    if cs is None:
        return
    cs.settled = False
    pod = cs.pods.pop(event.name, None)
    ours = cs.deleting.pop(event.name, None) is not None
    if pod is None:
        _drop_creating(cs, event.name)
        return
    lost_head = pod.role == ev.HEAD and cs.head == pod.name and not ours
    if pod.ip and (entry := cs.ray_nodes.pop(pod.ip, None)) is not None:
        del cs.node_free[pod.ip]
        if pod.ip in cs.joined:
            _unjoin(cs, pod.ip)
        add_free(cs.free_total, entry[0].available, -1.0)
        _forget_idle(cs, pod.ip)
    if ours:
        return  # uncounted since the delete was recorded: no decision changes
    _unaccount(cs, pod)
    if lost_head and cs.spec is not None and cs.phase is not Phase.NONE:
        _move(state, cs, Trigger.HEAD_LOST, event.at)
    _mark(state, cs.key)


# -- Ray load --------------------------------------------------------------------------------


def _ray_load(state: State, event: ev.RayLoad) -> None:
    """Keep the demand and fold the node states (complete, or the changes of a partial
    report); keep the least recent use of any idle worker, for the shortcut.

    The hottest fold of a replay with Ray load: a node whose free resources did not change
    is not taken out of the free sums and added again, and the least recent use is
    recomputed only when the node holding it changed (else it is a running minimum).
    """
    cs = state.clusters.get(event.cluster)
    if cs is None:
        return
    if cs.settled and _load_changes_nothing(state, cs, event):
        cs.load = event  # the same demand: kept as the latest report (snapshots show it)
        return
    cs.settled = False
    cs.load = event
    cs.load_fresh = True
    cs.needs_update = True
    state.dirty[cs.key] = None
    nodes, idle_since, free, frees = cs.ray_nodes, cs.idle_since, cs.free_total, cs.node_free
    joined, connected = cs.joined, cs.connected
    rescan = False
    if event.partial:
        oldest = least_recent_use(cs)
    else:
        nodes.clear()
        frees.clear()
        idle_since.clear()
        free.clear()
        joined.clear()
        connected.clear()
        oldest = math.inf
        cs.idle_stale = False
    for ip in event.gone:
        old = nodes.pop(ip, None)
        if old is not None:
            del frees[ip]
            add_free(free, old[0].available, -1.0)
            if ip in joined:
                _unjoin(cs, ip)
        since = idle_since.pop(ip, None)
        if since is not None and since <= oldest:
            rescan = True
    if not event.nodes:
        if rescan:
            oldest = min(idle_since.values(), default=math.inf)
        cs.oldest_use = oldest
        return
    at = event.at
    head = cs.pods.get(cs.head) if cs.head else None
    head_ip = head.ip if head is not None else None
    live = cs.live_ips.get
    for node in event.nodes:
        ip = node.ip
        available = node.available
        old = nodes.get(ip)
        if old is None:
            add_free(free, available, 1.0)
            pod = live(ip)
            if pod is not None:  # _join, inlined: a new node's IP is not joined yet
                pod_type = pod.pod_type
                joined[ip] = pod_type
                connected[pod_type] = connected.get(pod_type, 0) + 1
        elif (before_free := old[0].available) is not available and before_free != available:
            add_free(free, before_free, -1.0)
            add_free(free, available, 1.0)
        nodes[ip] = (node, at)
        frees[ip] = available
        if node.idle_seconds > 0 and ip != head_ip:
            since = at - node.idle_seconds
            before = idle_since.get(ip)
            idle_since[ip] = since
            if before is not None and before <= oldest and since > before:
                rescan = True
            elif since < oldest:
                oldest = since
        else:
            before = idle_since.pop(ip, None)
            if before is not None and before <= oldest:
                rescan = True
    if rescan:
        oldest = min(idle_since.values(), default=math.inf)
    cs.oldest_use = oldest


def _load_changes_nothing(state: State, cs: ClusterState, event: ev.RayLoad) -> bool:
    """Whether a full autoscaler pass after this report would surely decide nothing.

    `settled` says the cluster's last plan was a full pass that asked for nothing (no
    action, no timer, a current status) and no event about the cluster came since. A
    report that changes no node and repeats the demand leaves that pass's inputs as they
    were, except the time: an idle worker may pass its timeout, a lease may lapse. When
    neither can happen, the pass would decide nothing again, so it is skipped, and the
    state is left as that pass would leave it (`load_fresh` and `needs_update` stay
    cleared). Ray heads report every few seconds and a settled cluster's reports repeat;
    this makes each one cost a comparison (`tests/engine/test_shortcuts.py` checks the
    decisions against planning everything after every event).
    """
    if not event.partial or event.nodes or event.gone or state.exhaustive:
        return False
    if cs.key in state.dirty or cs.spec is None:
        return False
    if least_recent_use(cs) < event.at - cs.idle_timeout:
        return False
    me = state.install
    if me is not None:
        claim = cs.claim
        if (claim is None or claim.install != me.name or claim.handoff is not None
                or claim.contenders or cs.claim_confirmed != claim.fence
                or not lease_fresh(state, cs.key[0], event.at)):
            return False
    old = cs.load
    if old is None or not _same_bundles(old.pending, event.pending):
        return False
    if (old.requests or event.requests) and not _same_bundles(old.requests, event.requests):
        return False
    return not (old.placement_groups or event.placement_groups) or _same_groups(
        old.placement_groups, event.placement_groups)


def _same_bundles(a: tuple[ev.Bundle, ...], b: tuple[ev.Bundle, ...]) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if x.count != y.count or x.resources != y.resources:
            return False
    return True


def _same_groups(a: tuple[ev.PlacementGroup, ...], b: tuple[ev.PlacementGroup, ...]) -> bool:
    if len(a) != len(b):
        return False
    return all(x.strategy == y.strategy and tuple(x.bundles) == tuple(y.bundles)
               for x, y in zip(a, b, strict=True))


def _forget_idle(cs: ClusterState, ip: str) -> None:
    """A node left: drop its idle time, and find the least recent use again if it held it."""
    since = cs.idle_since.pop(ip, None)
    if since is not None and since <= cs.oldest_use:
        cs.idle_stale = True  # found again when next read: a burst of deletes scans once


def least_recent_use(cs: ClusterState) -> float:
    """The least recent last-use time of any idle worker (inf: none is idle)."""
    if cs.idle_stale:
        cs.oldest_use = min(cs.idle_since.values(), default=math.inf)
        cs.idle_stale = False
    return cs.oldest_use


def add_free(free: dict[str, float], available: Mapping[str, float], sign: float) -> None:
    """Add (sign 1) or remove (sign -1) one node's free resources to the cluster's sums.

    The sums bound what the connected nodes can take, so the planner can tell at once that
    pending tasks cannot all fit (`engine.autoscaler`); negative values count as zero.
    """
    for k, v in available.items():
        if v > 0:
            free[k] = free.get(k, 0.0) + sign * v


def _ray_unreachable(state: State, event: ev.RayUnreachable) -> None:
    cs = state.clusters.get(event.cluster)
    if cs is None or cs.spec is None or cs.phase is Phase.NONE or cs.phase is Phase.ERROR:
        return
    cs.settled = False
    cs.restart_head = bool(cs.head)
    cs.load = None
    cs.ray_nodes.clear()
    cs.node_free.clear()
    cs.free_total.clear()
    cs.joined.clear()
    cs.connected.clear()
    cs.idle_since.clear()
    cs.oldest_use = math.inf
    cs.idle_stale = False
    _move(state, cs, Trigger.AUTOSCALING_FAILED, event.at)
    _mark(state, cs.key)


def _tick(state: State, event: ev.Tick) -> None:
    timers = state.timers
    while timers and timers[0][0] <= event.at:
        _, _, key = heapq.heappop(timers)
        cs = state.clusters.get(key)
        if cs is not None:
            try:
                if cs.wake_pending <= event.at:
                    cs.wake_pending = math.inf
                if cs.expiry_at <= event.at:
                    cs.expiry_at = math.inf
                    expire_creates(state, cs, event.at)
                _settle(state, cs, event.at)
            except Exception as exc:  # a bulkhead: the other timers still fire
                quarantine(state, cs, event.at, "firing its timer", exc)
            _mark(state, key)


# -- results of earlier actions --------------------------------------------------------------


def _action_result(state: State, event: ev.ActionResult) -> None:
    kind, _, target = event.action.partition("/")
    if kind == "RenewLease":
        _lease_result(state, target, event)
        return
    cs = state.clusters.get(event.cluster)
    if cs is None:
        return
    cs.settled = False
    outcome = event.outcome
    ok = outcome == ev.DONE or outcome == ev.CONFLICT
    if outcome == ev.DONE:
        cs.failed_calls = 0
        if cs.told:  # allowed again: the next refusal is news
            cs.told.pop(f"Forbidden/{kind}", None)
    elif outcome == ev.FORBIDDEN:
        notice(state, cs, "Forbidden", f"the API server forbids {_WHAT.get(kind, kind)}: "
                                       f"{event.reason} (retried with backoff)",
               key=f"Forbidden/{kind}")
    handler = _RESULTS.get(kind)
    if handler is not None:
        handler(state, cs, target, ok, event)


_WHAT = {"CreatePod": "creating pods", "DeletePod": "deleting pods",
         "ApplyService": "writing the head Service", "PatchStatus": "writing the status",
         "WriteClaim": "writing the claim"}


def notice(state: State, cs: ClusterState, reason: str, message: str, *,
           key: str = "") -> None:
    """Have the next plan tell `message` as a Warning Event and a log line, unless a notice
    of the same `key` (default: the message) was told and not cleared since: a persistent
    error is told once, not at every retry."""
    key = key or message
    if key not in cs.told:
        cs.notices.append((reason, message))
        cs.told[key] = None
        _mark(state, cs.key)


def _create_result(
    state: State, cs: ClusterState, name: str, ok: bool, event: ev.ActionResult
) -> None:
    creating = cs.creating.get(name)
    if creating is None:
        return
    if ok:
        creating.acked = True
        if cs.expiry_at == math.inf:
            cs.expiry_at = event.at + CREATE_EXPECTATION_TTL
            wake(state, cs.key, cs.expiry_at)
        return
    _drop_creating(cs, name)
    if event.outcome == ev.REJECTED:  # the same pod would be refused again
        fail(state, cs, event.at, "RejectedByApiServer",
             f"the API server refused pod {name}: {event.reason}")
        return
    retry_later(state, cs, event.at)
    _mark(state, cs.key)


def _delete_result(
    state: State, cs: ClusterState, name: str, ok: bool, event: ev.ActionResult
) -> None:
    if ok or name not in cs.deleting:
        return
    pod = cs.pods.get(name)
    del cs.deleting[name]
    if pod is not None:
        _account(cs, pod)
    retry_later(state, cs, event.at)


def _service_result(
    state: State, cs: ClusterState, name: str, ok: bool, event: ev.ActionResult
) -> None:
    outcome = event.outcome
    if outcome == ev.DONE:
        cs.service = cs.service_inflight
        if cs.service_conflict:  # resolved: the status shows it
            cs.service_conflict = ""
            _mark(state, cs.key)
    elif outcome == ev.CONFLICT:  # a Service of that name that is not this cluster's
        if not cs.service_conflict:
            cs.service_conflict_since = event.at
        cs.service_conflict = event.reason
        cs.service_retry_at = event.at + SERVICE_RECHECK
        wake(state, cs.key, cs.service_retry_at)
    elif outcome == ev.REJECTED:
        fail(state, cs, event.at, "RejectedByApiServer",
             f"the API server refused the head Service {name}: {event.reason}")
    else:
        retry_later(state, cs, event.at)
    cs.service_inflight = ""


def _status_result(
    state: State, cs: ClusterState, name: str, ok: bool, event: ev.ActionResult
) -> None:
    if event.outcome == ev.REJECTED:  # kept as sent: the same status is not sent again
        notice(state, cs, "StatusRejected",
               f"the API server refused this cluster's status: {event.reason}")
    elif not ok or event.outcome == ev.CONFLICT:
        cs.status_sent = None
        retry_later(state, cs, event.at)


def _claim_result(
    state: State, cs: ClusterState, name: str, ok: bool, event: ev.ActionResult
) -> None:
    cs.claim_inflight = False
    if event.outcome == ev.REJECTED:  # not written again until the object changes
        cs.claim_refused = cs.claim_rv
        cs.claim_writing = None
        notice(state, cs, "ClaimRejected",
               f"the API server refused this install's claim on the cluster: {event.reason}")
        return
    if not ok or event.outcome == ev.CONFLICT:  # the watch brings the claim that won
        cs.asked_at = cs.contended_at = -math.inf  # not written: may be tried again
        retry_later(state, cs, event.at)
    elif cs.claim_writing is not None:
        cs.claim_confirmed, cs.claim_replaced = cs.claim_writing
        _mark(state, cs.key)  # the claim seen may be the one just confirmed: act on it
    cs.claim_writing = None


def _lease_result(state: State, namespace: str, event: ev.ActionResult) -> None:
    own = state.own_leases.get(namespace)
    if own is None or not own.inflight or state.install is None:
        return
    own.inflight = False
    if event.outcome == ev.DONE:
        fresh = own.renewed_at + state.install.fence_seconds > own.issued_at
        own.renewed_at = own.issued_at
        own.due = own.issued_at + state.install.renew_seconds
        if not fresh:  # this install may act in `namespace` again: plan its clusters
            mark_namespace(state, namespace)
    else:  # retried after RETRY_AFTER_FAILURE: planning the leases now announces when
        own.due = event.at + RETRY_AFTER_FAILURE
        state.lease_due = event.at
        return
    state.lease_due = next_lease_due(state)


def next_lease_due(state: State) -> float:
    """When the next renewal of this install's leases is due (none in flight counted; where
    a newer process of this install acts, when its lease would lapse)."""
    due = math.inf
    rivals = state.rivals
    for ns, own in state.own_leases.items():
        if own.inflight or not state.namespaces.get(ns):
            continue
        at = own.due
        rival = rivals.get(ns) if rivals else None
        if rival is not None:
            at = max(at, rival.until)
        due = min(due, at)
    return due


def mark_namespace(state: State, namespace: str) -> None:
    for key in state.clusters:
        if key[0] == namespace:
            state.dirty[key] = None


def lease_fresh(state: State, namespace: str, now: float) -> bool:
    """Whether this install's own lease in `namespace` lets it act now (the fence), and no
    newer process of this install acts there."""
    if state.install is None:
        return True
    own = state.own_leases.get(namespace)
    if state.rivals and rival_alive(state, namespace, now):
        return False
    return own is not None and now < own.renewed_at + state.install.fence_seconds


def _lease_seen(state: State, event: ev.LeaseSeen) -> None:
    if state.install is not None and event.install == state.install.name:
        # Our own lease: its renewals are known from their results, unless a newer process
        # of this install renewed it (one name, one actor).
        if claims.newer(event.instance, state.install.instance):
            _rival_seen(state, event)
        return
    key = (event.namespace, event.install)
    peer = state.peers.get(key)
    if peer is None or peer.gone:
        state.peers[key] = Peer(renewed=event.renewed, observed_at=event.at,
                                seconds=event.seconds)
        mark_namespace(state, event.namespace)
    elif peer.renewed != event.renewed:
        peer.renewed = event.renewed
        peer.observed_at = event.at
        peer.seconds = event.seconds


def _rival_seen(state: State, event: ev.LeaseSeen) -> None:
    ns = event.namespace
    rival = state.rivals.get(ns)
    if rival is None or event.instance > rival.instance:
        state.rivals[ns] = Rival(instance=event.instance, renewed=event.renewed,
                                 observed_at=event.at, seconds=event.seconds)
        mark_namespace(state, ns)  # stand down there at once
        state.lease_due = min(state.lease_due, event.at)
    elif event.instance == rival.instance and event.renewed != rival.renewed:
        rival.renewed = event.renewed
        rival.observed_at = event.at
        rival.seconds = event.seconds


def rival_alive(state: State, namespace: str, now: float) -> bool:
    """Whether a newer process of this install is alive in `namespace` (we stand down)."""
    rival = state.rivals.get(namespace)
    return rival is not None and now < rival.until


def _lease_gone(state: State, event: ev.LeaseGone) -> None:
    if state.install is not None and event.install == state.install.name:
        if state.rivals.pop(event.namespace, None) is not None:  # the newer one left
            state.faults.append(f"resuming in namespace {event.namespace}: the newer "
                                f"process of {event.install} released its lease")
            state.dirty[("", "")] = None
            own = state.own_leases.get(event.namespace)
            if own is not None:  # renewed at once: others saw the lease go
                own.due = min(own.due, event.at)
            state.lease_due = min(state.lease_due, event.at)
            mark_namespace(state, event.namespace)
        return
    peer = state.peers.get((event.namespace, event.install))
    if peer is None:
        state.peers[(event.namespace, event.install)] = Peer(
            renewed="", observed_at=-math.inf, seconds=0.0, gone=True)
    else:
        peer.gone = True
    mark_namespace(state, event.namespace)


def alive_until(state: State, cs: ClusterState, install: str) -> float:
    """Until when `install` counts as alive in `cs`'s namespace, by this install's clock.

    A lease never seen there gives the install one lease duration from when its claim was
    first seen (its lease may simply not have arrived yet); a deleted one, nothing.
    """
    assert state.install is not None
    peer = state.peers.get((cs.key[0], install))
    if peer is None:
        return cs.claim_since + state.install.lease_seconds
    if peer.gone:
        return -math.inf
    return peer.observed_at + peer.seconds


def retry_later(state: State, cs: ClusterState, at: float) -> None:
    """A call for `cs` failed: write nothing more for it until a delay has passed, 1 s
    doubling to 60 s while calls keep failing (a persistent error, such as a missing RBAC
    permission or a cluster deleted while the watch was down, must not make the operator
    retry in a tight loop), then plan it again."""
    cs.failed_calls += 1
    delay = min(RETRY_AFTER_FAILURE * 2 ** (cs.failed_calls - 1), RETRY_CAP)
    cs.retry_at = max(cs.retry_at, at + delay)
    wake(state, cs.key, cs.retry_at)


def _service_gone(state: State, event: ev.ServiceGone) -> None:
    cs = state.clusters.get(event.cluster)
    if cs is not None:
        cs.settled = False
        cs.service = ""
        _mark(state, cs.key)


def expire_creates(state: State, cs: ClusterState, now: float) -> None:
    """Forget acknowledged creates never observed within the TTL (the pod vanished unseen)."""
    oldest = math.inf
    for name, creating in list(cs.creating.items()):
        if not creating.acked:
            continue
        if now - creating.issued_at >= CREATE_EXPECTATION_TTL:
            _drop_creating(cs, name)
        else:
            oldest = min(oldest, creating.issued_at)
    if oldest < math.inf:
        cs.expiry_at = oldest + CREATE_EXPECTATION_TTL
        wake(state, cs.key, cs.expiry_at)


def _drop_creating(cs: ClusterState, name: str) -> None:
    creating = cs.creating.pop(name, None)
    if creating is None:
        return
    if creating.role == ev.WORKER:
        cs.inflight[creating.pod_type] -= 1
    elif cs.head_creating == name:
        cs.head_creating = ""


def add_creating(cs: ClusterState, name: str, pod_type: str, role: str, at: float) -> None:
    """Record a create in flight (the planner decided it)."""
    cs.creating[name] = Creating(pod_type, role, at)
    if role == ev.WORKER:
        cs.inflight[pod_type] = cs.inflight.get(pod_type, 0) + 1
    else:
        cs.head_creating = name
    cs.counter += 1


def add_deleting(cs: ClusterState, name: str, at: float) -> None:
    """Record a delete in flight: the pod stops counting as live at once."""
    pod = cs.pods.get(name)
    if name in cs.deleting:
        return
    if pod is not None:
        _unaccount(cs, pod)
        if pod.role == ev.HEAD:
            cs.restart_head = False
    cs.deleting[name] = at


def _synced(state: State, event: ev.Synced) -> None:
    state.synced = True
    state.dirty.update(dict.fromkeys(state.clusters))


HANDLERS: dict[type, Callable[[State, Any], None]] = {
    ev.ClusterSeen: _cluster_seen,
    ev.ClusterDeleted: _cluster_deleted,
    ev.PodSeen: _pod_seen,
    ev.PodGone: _pod_gone,
    ev.RayLoad: _ray_load,
    ev.RayUnreachable: _ray_unreachable,
    ev.Tick: _tick,
    ev.ActionResult: _action_result,
    ev.ServiceGone: _service_gone,
    ev.Synced: _synced,
    ev.LeaseSeen: _lease_seen,
    ev.LeaseGone: _lease_gone,
}

_RESULTS: dict[str, Callable[[State, ClusterState, str, bool, ev.ActionResult], None]] = {
    "CreatePod": _create_result,
    "DeletePod": _delete_result,
    "ApplyService": _service_result,
    "PatchStatus": _status_result,
    "WriteClaim": _claim_result,
}


def signature_of(status: Mapping[str, Any]) -> Signature:
    """The signature of a status dict (written by us now, or by an earlier operator)."""
    try:
        phase = Phase(status.get("phase") or "")
    except ValueError:
        phase = Phase.NONE
    retries = status.get("autoscalerRetries")
    generation = status.get("observedGeneration")
    conditions = [c for c in status.get("conditions") or [] if isinstance(c, Mapping)]
    ready = any(c.get("type") == "HeadPodReady" and c.get("status") == "True"
                for c in conditions)
    manager = status.get("managedBy")
    return Signature(
        phase=phase,
        retries=retries if isinstance(retries, int) else 0,
        generation=generation if isinstance(generation, int) else 0,
        problems=str(status.get("message") or ""),
        head_ready=ready,
        manager=manager if isinstance(manager, str) else "",
        conflict=_condition_message(conditions, "OwnershipConflict"),
        service_conflict=_condition_message(conditions, "ServiceConflict"),
    )


def _condition_message(conditions: list[Mapping[str, Any]], kind: str) -> str:
    """The message of the condition `kind` when it is True, else ""."""
    return next((str(c.get("message") or "") for c in conditions
                 if c.get("type") == kind and c.get("status") == "True"), "")
