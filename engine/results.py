"""What became of the actions: one handler per action type, told by its `ActionResult`.

A create acknowledged waits to be seen (it expires unseen after a while); a refused one is
the cluster's error; a failed call backs the cluster off (`lifecycle.retry_later`); a 403 is
told once as a Warning Event. Claim and lease results are folded by `engine.claiming`,
drain answers by `engine.drains`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from engine import claiming, drains, pods
from engine import events as ev
from engine import lifecycle as lc
from engine.records import CREATE_EXPECTATION_TTL, SERVICE_RECHECK, ClusterState, State


def action_result(state: State, event: ev.ActionResult) -> None:
    kind, _, target = event.action.partition("/")
    if kind == "RenewLease":
        claiming.lease_result(state, target, event)
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
        message = (f"the API server forbids {_WHAT.get(kind, kind)}: {event.reason} "
                   "(retried with backoff)")
        lc.notice(state, cs, "Forbidden", message, key=f"Forbidden/{kind}")
    handler = _RESULTS.get(kind)
    if handler is not None:
        handler(state, cs, target, ok, event)


_WHAT = {"CreatePod": "creating pods", "DeletePod": "deleting pods",
         "ApplyService": "writing the head Service", "PatchStatus": "writing the status",
         "WriteClaim": "writing the claim"}


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
            lc.wake(state, cs.key, cs.expiry_at)
        return
    pods.drop_creating(cs, name)
    if event.outcome == ev.REJECTED:  # the same pod would be refused again
        lc.fail(state, cs, event.at, "RejectedByApiServer",
                f"the API server refused pod {name}: {event.reason}")
        return
    lc.retry_later(state, cs, event.at)
    lc.mark(state, cs.key)


def _delete_result(
    state: State, cs: ClusterState, name: str, ok: bool, event: ev.ActionResult
) -> None:
    if ok or name not in cs.deleting:
        return
    pod = cs.pods.get(name)
    del cs.deleting[name]
    if pod is not None:
        pods.account(cs, pod)
    lc.retry_later(state, cs, event.at)


def _service_result(
    state: State, cs: ClusterState, name: str, ok: bool, event: ev.ActionResult
) -> None:
    outcome = event.outcome
    if outcome == ev.DONE:
        cs.service = cs.service_inflight
        if cs.service_conflict:  # resolved: the status shows it
            cs.service_conflict = ""
            lc.mark(state, cs.key)
    elif outcome == ev.CONFLICT:  # a Service of that name that is not this cluster's
        if not cs.service_conflict:
            cs.service_conflict_since = event.at
        cs.service_conflict = event.reason
        cs.service_retry_at = event.at + SERVICE_RECHECK
        lc.wake(state, cs.key, cs.service_retry_at)
    elif outcome == ev.REJECTED:
        lc.fail(state, cs, event.at, "RejectedByApiServer",
                f"the API server refused the head Service {name}: {event.reason}")
    else:
        lc.retry_later(state, cs, event.at)
    cs.service_inflight = ""


def _status_result(
    state: State, cs: ClusterState, name: str, ok: bool, event: ev.ActionResult
) -> None:
    if event.outcome == ev.REJECTED:  # kept as sent: the same status is not sent again
        lc.notice(state, cs, "StatusRejected",
                  f"the API server refused this cluster's status: {event.reason}")
    elif not ok or event.outcome == ev.CONFLICT:
        cs.status_sent = None
        lc.retry_later(state, cs, event.at)


_RESULTS: dict[str, Callable[[State, ClusterState, str, bool, ev.ActionResult], None]] = {
    "CreatePod": _create_result,
    "DeletePod": _delete_result,
    "ApplyService": _service_result,
    "PatchStatus": _status_result,
    "WriteClaim": claiming.claim_result,
    "DrainNode": drains.drain_result,
}
