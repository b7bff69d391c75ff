"""Engine actions in, API calls out, results back as events: the other half of the driver.

The API is a protocol (`Api`): the simulator's in-memory API and the live adapter's client
both provide it. Outcomes follow the Kubernetes contract:
- create: 201 -> done; 409 -> re-observe: the pod is there -> conflict (the watch will show
  it), it is not -> failed; anything else -> failed with the reason;
- delete: done, or 404 (already gone) -> done; 409 -> re-observe: gone -> done, else failed;
- the head Service: create, or on 409 patch it to the manifest if the RayCluster owns it
  (a Service of that name owned by anything else is a conflict, never changed);
- 400, 413, 415 and 422 say the request itself is wrong (`rejected`: sending it again
  cannot help); 403 is `forbidden` (RBAC, a quota or a policy: retried with backoff);
- status: a patch of the status subresource; 409 -> conflict (the engine sends it again);
- Events: posted best-effort (a failure is logged, never retried);
- Log: written by the caller's log sink with the cluster prefix;
- Requeue: handed to the caller's timer;
- the ownership claim: a merge patch of the annotation carrying the resourceVersion read, so
  a concurrent writer makes it 409 (conflict: the watch brings the winner);
- the install's Lease: patched with a new renewTime, created when missing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from attrs import field, frozen

from engine import actions as act
from engine import claims
from engine import events as ev


class ApiError(Exception):
    """An API call that failed; `status` is the HTTP status (0 for a timeout)."""

    def __init__(self, status: int, reason: str, message: str = "") -> None:
        self.status = status
        self.reason = reason
        self.message = message  # the API server's own words
        super().__init__(f"{status} {reason}: {message}" if message else f"{status} {reason}")


class Api(Protocol):
    def get(self, resource: str, namespace: str, name: str) -> dict[str, Any]: ...

    def create(self, resource: str, namespace: str, obj: Mapping[str, Any]) -> dict[str, Any]: ...

    def delete(self, resource: str, namespace: str, name: str, *, uid: str = "") -> None: ...

    def patch(self, resource: str, namespace: str, name: str,
              patch: Mapping[str, Any]) -> dict[str, Any]: ...

    def patch_status(self, resource: str, namespace: str, name: str,
                     status: Mapping[str, Any], *,
                     precondition: Precondition | None = None) -> dict[str, Any]: ...


@frozen(kw_only=True)
class Precondition:
    """What the object must still be for a write to apply (409 otherwise): its uid, and
    annotations with exact values (a JSON Patch `test` on the live server)."""

    uid: str = ""
    annotations: Mapping[str, str] = field(factory=dict)


def result(action: act.Action, at: float, outcome: str, reason: str = "") -> ev.ActionResult:
    return ev.ActionResult(cluster=action.cluster, at=at, action=action.ref, outcome=outcome,
                           reason=reason)


def status_of(reason: str) -> int:
    """The HTTP status a failed result's reason starts with (an `ApiError`), else 0."""
    head = reason.split(" ", 1)[0]
    return int(head) if head.isdigit() else 0


def execute(api: Api, action: act.Action, at: float, *,
            log: Callable[[act.Log], None],
            requeue: Callable[[act.Requeue], None],
            event_time: Callable[[float], str]) -> ev.ActionResult | None:
    """Carry out one action; return the result event for effects, None otherwise."""
    kind = type(action)
    if kind is act.Log:
        assert isinstance(action, act.Log)
        log(action)
        return None
    if kind is act.Requeue:
        assert isinstance(action, act.Requeue)
        requeue(action)
        return None
    if kind is act.EmitEvent:
        assert isinstance(action, act.EmitEvent)
        with contextlib.suppress(ApiError):  # Events are best-effort, as client-go's recorder
            api.create("events", action.cluster[0], kubernetes_event(action, event_time(at)))
        return None
    try:
        return _effect(api, action, at)
    except ApiError as exc:
        if exc.status == 409 and isinstance(action, act.CreatePod | act.DeletePod):
            return _reobserve(api, action, at, exc)
        return result(action, at, outcome_of(exc.status), str(exc))


REFUSED = frozenset({400, 413, 415, 422})
"""Answers that say the request itself is wrong: the same request would fail again."""


def outcome_of(status: int) -> str:
    """The engine's outcome for a failed call's HTTP status (0: no answer)."""
    if status == 409:
        return ev.CONFLICT
    if status in REFUSED:
        return ev.REJECTED
    if status == 403:
        return ev.FORBIDDEN
    return ev.FAILED_OUTCOME


def _reobserve(api: Api, action: act.CreatePod | act.DeletePod, at: float,
               error: ApiError) -> ev.ActionResult:
    """A 409: look before trusting it. After a create, the pod there means it is done (the
    watch will show it); after a delete, the pod gone means done. Otherwise the call failed
    and the engine decides again."""
    try:
        api.get("pods", action.cluster[0], action.name)
    except ApiError as exc:
        if isinstance(action, act.DeletePod) and exc.status == 404:
            return result(action, at, ev.DONE)
        return result(action, at, ev.FAILED_OUTCOME, f"{error}; then {exc}")
    if isinstance(action, act.DeletePod):
        return result(action, at, ev.FAILED_OUTCOME, str(error))
    return result(action, at, ev.CONFLICT, str(error))


def _effect(api: Api, action: act.Action, at: float) -> ev.ActionResult:
    namespace = action.cluster[0]
    if isinstance(action, act.CreatePod):
        api.create("pods", namespace, action.manifest)
    elif isinstance(action, act.DeletePod):
        try:
            api.delete("pods", namespace, action.name, uid=action.uid)
        except ApiError as exc:
            if exc.status != 404:
                raise
    elif isinstance(action, act.ApplyService):
        try:
            api.create("services", namespace, action.manifest)
        except ApiError as exc:
            if exc.status != 409:
                raise
            existing = api.get("services", namespace, action.name)
            owners = {r.get("uid") for r in existing["metadata"].get("ownerReferences") or []}
            mine = {r.get("uid") for r in action.manifest["metadata"].get("ownerReferences", [])}
            if not owners & mine:  # never patched: it is someone else's
                raise ApiError(409, "Conflict", f"a Service named {action.name} exists and is "
                                                "not owned by this RayCluster; the operator "
                                                "leaves it alone (delete or rename it)") from exc
            spec = dict(action.manifest["spec"])
            selector = dict(spec["selector"])
            for key in (existing.get("spec") or {}).get("selector") or {}:
                selector.setdefault(key, None)  # exactly the head's selector, nothing else
            spec["selector"] = selector
            api.patch("services", namespace, action.name,
                      {"metadata": {"labels": action.manifest["metadata"]["labels"]},
                       "spec": spec})
    elif isinstance(action, act.PatchStatus):
        api.patch_status("rayclusters", namespace, action.cluster[1], action.status,
                         precondition=Precondition(
                             uid=action.uid,
                             annotations={claims.FENCE: action.fence} if action.fence else {}))
    elif isinstance(action, act.WriteClaim):
        claim = claims.parse({"metadata": {"annotations": {claims.ANNOTATION: action.claim}}})
        assert claim is not None
        api.patch("rayclusters", namespace, action.cluster[1], {"metadata": {
            "resourceVersion": action.resource_version,
            "annotations": {claims.ANNOTATION: action.claim, claims.FENCE: claim.fence}}})
    elif isinstance(action, act.RenewLease):
        _renew(api, action, at)
    return result(action, at, ev.DONE)


def _renew(api: Api, action: act.RenewLease, at: float) -> None:
    name = claims.lease_name(action.install)
    spec = {"holderIdentity": action.install, "leaseDurationSeconds": int(action.seconds),
            "renewTime": microtime(at)}
    annotations = {claims.RANK_ANNOTATION: str(action.rank)}
    if action.instance:
        annotations[claims.INSTANCE_ANNOTATION] = action.instance
    try:
        api.patch("leases", action.namespace, name,
                  {"metadata": {"annotations": annotations}, "spec": spec})
    except ApiError as exc:
        if exc.status != 404:
            raise
        api.create("leases", action.namespace, {
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": name, "namespace": action.namespace,
                         "labels": {claims.LEASE_LABEL: action.install},
                         "annotations": annotations},
            "spec": {**spec, "acquireTime": microtime(at)},
        })


def microtime(seconds: float) -> str:
    """A Kubernetes MicroTime (RFC 3339 with microseconds, UTC)."""
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def kubernetes_event(action: act.EmitEvent, when: str) -> dict[str, Any]:
    namespace, name = action.cluster
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{name}.", "namespace": namespace},
        "involvedObject": {"apiVersion": "cluster.ray.io/v1", "kind": "RayCluster",
                           "name": name, "namespace": namespace,
                           **({"uid": action.uid} if action.uid else {})},
        "type": action.type,
        "reason": action.reason,
        "message": action.message,
        "source": {"component": "ray-operator"},
        "firstTimestamp": when,
        "lastTimestamp": when,
        "count": 1,
    }
