"""Which operator install may act on a RayCluster: claims, leases, precedence and fencing.

The legacy docs only warned against running a namespaced and a cluster-scoped operator
over the same namespace. Here two installs never act on one cluster:

- **Claim.** An install acts on a cluster only while the cluster's `cluster.ray.io/claim`
  annotation names it. The claim carries an `epoch` that grows by one at every change of
  holder; it is written with a resourceVersion precondition, so of two racing writers one
  gets 409 and re-reads.
- **Liveness.** Every install renews a `coordination.k8s.io` Lease in each namespace where
  it sees RayClusters (so a namespaced install, which may only read its own namespace, still
  sees the leases of everyone contending there). A peer counts as alive while its lease's
  renewTime keeps changing: expiry is measured on the observer's own clock from the last
  change it saw (as client-go's leader election does), never by comparing clocks. A deleted
  lease (an uninstall) means gone at once.
- **Precedence.** The narrowest scope wins (a namespaced install over a cluster-wide one,
  `engine.scopes.Scope.rank`); between equal ranks the live claim holds. A narrower install
  does not grab a live holder's cluster: it asks (`handoff` in the claim) and the holder,
  seeing the request, stops acting and writes the claim over to it. A dead holder's claim is
  taken over directly once its lease has expired.
- **Fencing.** An install acts only while its own lease in that namespace was renewed less
  than `fence_seconds` ago (two thirds of the lease duration, client-go's renew deadline), so
  a stale or cut-off install stops before anyone may take over; the driver checks the claim
  again right before every write, so nothing queued runs after a hand-over. The API server
  checks too, for an install whose view is stale (its watch was down): status writes test
  the cluster's uid and its `cluster.ray.io/claim-holder` annotation (`<install>/<epoch>`,
  written with the claim), pod deletes carry the pod's uid, and pods and the Service name
  the cluster's uid as their owner, so one created for a cluster that was since replaced
  is garbage-collected.
- **One name, one actor.** Two processes of one install (the same `--operator-name`,
  without leader election) would each trust only the claims it wrote and take them from
  each other for ever. Each process has an `instance` (its start time, host and pid), which
  its lease renewals write; a process that sees its install's lease renewed by a newer
  instance stands down in that namespace (no renewal, no write) until that lease lapses or
  is deleted, and logs why. The newest process acts: a restarted pod takes over at once.
- **Conflict.** An install that loses writes itself into the claim's `contenders` (once),
  posts a Warning Event, logs a line and counts a metric; the holder shows live contenders as
  the `OwnershipConflict` condition of the cluster's status.

Everything here is pure: times come from events, the annotation is parsed and written as JSON.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from typing import Any, TypeGuard

from attrs import evolve, field, frozen

ANNOTATION = "cluster.ray.io/claim"
FENCE = "cluster.ray.io/claim-holder"  # "<install>/<epoch>": what a holder's writes test for
LEASE_PREFIX = "ray-operator-"
LEASE_LABEL = "cluster.ray.io/operator-lease"
RANK_ANNOTATION = "cluster.ray.io/scope-rank"
INSTANCE_ANNOTATION = "cluster.ray.io/operator-instance"
LEASE_SECONDS = 15.0
RENEW_SECONDS = 5.0
FENCE_FRACTION = 2.0 / 3.0


@frozen(kw_only=True)
class Install:
    """This operator install: its name (`--operator-name`), its scope's rank and timings."""

    name: str
    rank: int
    lease_seconds: float = LEASE_SECONDS
    renew_seconds: float = RENEW_SECONDS
    instance: str = ""  # this process of the install (see `newer`); "" for none known

    @property
    def fence_seconds(self) -> float:
        return self.lease_seconds * FENCE_FRACTION

    @property
    def lease_name(self) -> str:
        return lease_name(self.name)


def lease_name(install: str) -> str:
    return f"{LEASE_PREFIX}{install}"


@frozen(kw_only=True)
class Claim:
    """The parsed `cluster.ray.io/claim` annotation."""

    install: str
    epoch: int
    rank: int
    handoff: tuple[str, int] | None = None  # (install, rank) asking the holder to hand over
    contenders: Mapping[str, int] = field(factory=dict)  # losing installs -> their rank

    @property
    def fence(self) -> str:
        return f"{self.install}/{self.epoch}"

    def encode(self) -> str:
        body: dict[str, Any] = {"install": self.install, "epoch": self.epoch, "rank": self.rank}
        if self.handoff is not None:
            body["handoff"] = {"install": self.handoff[0], "rank": self.handoff[1]}
        if self.contenders:
            body["contenders"] = dict(sorted(self.contenders.items()))
        return json.dumps(body, separators=(",", ":"), sort_keys=True)


class BadClaim(ValueError):
    """An annotation that is not a claim (the message says which field is wrong)."""


def parse(obj: Mapping[str, Any]) -> Claim | None:
    """The claim on a RayCluster object, None when unclaimed; raise `BadClaim` if garbled."""
    meta = obj.get("metadata") or {}
    text = (meta.get("annotations") or {}).get(ANNOTATION)
    if text is None:
        return None
    try:
        body = json.loads(text)
    except (TypeError, ValueError, RecursionError) as exc:
        raise BadClaim(f"metadata.annotations[{ANNOTATION}]: expected JSON, got "
                       f"{str(text)[:60]!r}") from exc
    if not isinstance(body, dict):
        raise BadClaim(f"metadata.annotations[{ANNOTATION}]: expected an object")
    install, epoch, rank = body.get("install"), body.get("epoch"), body.get("rank")
    if not isinstance(install, str) or not install:
        raise BadClaim(f"metadata.annotations[{ANNOTATION}].install: expected a name")
    if not (_int(epoch) and _int(rank)):
        raise BadClaim(f"metadata.annotations[{ANNOTATION}]: epoch and rank must be integers")
    handoff = body.get("handoff")
    wanted: tuple[str, int] | None = None
    if isinstance(handoff, dict) and isinstance(handoff.get("install"), str) and _int(
            handoff.get("rank")):
        wanted = (handoff["install"], handoff["rank"])
    contenders = body.get("contenders") or {}
    if not isinstance(contenders, dict):
        contenders = {}
    return Claim(install=install, epoch=epoch, rank=rank, handoff=wanted,
                 contenders={k: v for k, v in contenders.items()
                             if isinstance(k, str) and _int(v)})


def _int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


class Verdict(enum.Enum):
    ACT = "act"  # the claim is ours: act
    CLAIM = "claim"  # unclaimed, or the holder is dead: write a claim naming us
    HAND_OFF = "hand-off"  # ours, and a live narrower install asked: write it over to them
    ASK = "ask"  # a live wider install holds it: ask it to hand over
    WAIT = "wait"  # we asked; the holder has not answered yet
    LOSE = "lose"  # a live install of equal or narrower scope holds it


def verdict(me: Install, claim: Claim | None, *, alive: Mapping[str, bool],
            confirmed: bool = True) -> Verdict:
    """What `me` does about one cluster, given its claim and which installs are alive.

    `alive` says, for each install named in the claim, whether its lease is current.
    `confirmed` says whether this process wrote the claim naming it (and saw the write
    succeed): a claim naming `me` that it did not write here, left by its previous run or
    handed over by the holder, is written again first (the next epoch, with the
    resourceVersion precondition). Its lease may have lapsed since that claim was written
    and another install may have taken the cluster over unseen (this install's watch may be
    down); the precondition makes that write fail instead of two installs acting.
    """
    if claim is None or (not alive.get(claim.install, False) and claim.install != me.name):
        return Verdict.CLAIM
    if claim.install == me.name:
        handoff = claim.handoff
        if handoff is not None and handoff[1] < claim.rank and alive.get(handoff[0], False):
            return Verdict.HAND_OFF
        return Verdict.ACT if confirmed else Verdict.CLAIM
    if me.rank < claim.rank:
        handoff = claim.handoff
        if handoff is not None and handoff[0] == me.name:
            return Verdict.WAIT
        if handoff is None or not alive.get(handoff[0], False) or me.rank < handoff[1]:
            return Verdict.ASK
    return Verdict.LOSE


def claimed_by(me: Install, claim: Claim | None) -> Claim:
    """The claim `me` writes to take a cluster: the next epoch, no request, same contenders
    minus itself."""
    epoch = claim.epoch + 1 if claim is not None else 1
    contenders = {k: v for k, v in (claim.contenders if claim else {}).items() if k != me.name}
    return Claim(install=me.name, epoch=epoch, rank=me.rank, contenders=contenders)


def handed_to(claim: Claim) -> Claim:
    """The claim the holder writes to hand over to the install that asked."""
    assert claim.handoff is not None
    to, rank = claim.handoff
    contenders = {k: v for k, v in claim.contenders.items() if k != to}
    return Claim(install=to, epoch=claim.epoch + 1, rank=rank, contenders=contenders)


def asked_by(me: Install, claim: Claim) -> Claim:
    return evolve(claim, handoff=(me.name, me.rank))


def contended_by(me: Install, claim: Claim) -> Claim:
    return evolve(claim, contenders={**claim.contenders, me.name: me.rank})


def without(claim: Claim, gone: set[str]) -> Claim:
    """The claim with dead contenders (and a dead requester) dropped."""
    handoff = claim.handoff if claim.handoff is None or claim.handoff[0] not in gone else None
    return evolve(claim, handoff=handoff,
                  contenders={k: v for k, v in claim.contenders.items() if k not in gone})


def newer(instance: str, mine: str) -> bool:
    """Whether `instance` of this install is a newer process than `mine` (instances sort by
    start time first; an unknown instance, "", is neither)."""
    return bool(instance) and bool(mine) and instance > mine
