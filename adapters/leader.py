"""Leader election among replicas of one install (`ray-operator --leader-elect`).

Replicas of one install share its name, hence its claims; only one of them may run the loop.
They compete for one Lease, `ray-operator-<install>-leader`, as client-go's leaderelection
does: the holder renews it every `retry_seconds`; another replica takes it over only after it
has seen the renewTime unchanged for `lease_seconds` on its own clock; every write carries the
resourceVersion it read, so two replicas cannot both win. A leader that cannot renew for
`renew_deadline` seconds steps down (the process exits and its pod restarts), before any other
replica may take over. Stepping down on SIGTERM clears the holder so a successor starts at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from driver.execute import Api, ApiError, microtime

LEASE_SECONDS = 15.0
RENEW_DEADLINE = 10.0
RETRY_SECONDS = 2.0


class Elector:
    def __init__(self, api: Api, *, namespace: str, install: str, identity: str,
                 lease_seconds: float = LEASE_SECONDS, renew_deadline: float = RENEW_DEADLINE,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.api = api
        self.namespace = namespace
        self.name = f"ray-operator-{install}-leader"
        self.identity = identity
        self.lease_seconds = lease_seconds
        self.renew_deadline = renew_deadline
        self.clock = clock
        self.wall = wall
        self.seen: tuple[str, str] | None = None  # (holder, renewTime) last observed
        self.seen_at = 0.0  # when `seen` last changed, on our clock
        self.renewed_at = -float("inf")  # our last successful acquire or renewal

    @property
    def leading(self) -> bool:
        return self.clock() - self.renewed_at < self.renew_deadline

    def _spec(self, transitions: int) -> dict[str, Any]:
        now = microtime(self.wall())
        return {"holderIdentity": self.identity, "leaseDurationSeconds": int(self.lease_seconds),
                "renewTime": now, "acquireTime": now, "leaseTransitions": transitions}

    def try_acquire_or_renew(self) -> bool:
        """One round: take or keep the lease if the rules allow; return whether we lead."""
        now = self.clock()
        try:
            lease = self.api.get("leases", self.namespace, self.name)
        except ApiError as exc:
            if exc.status != 404:
                return self.leading
            try:
                self.api.create("leases", self.namespace, {
                    "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": self.namespace},
                    "spec": self._spec(0)})
            except ApiError:
                return self.leading
            self.renewed_at = now
            return True
        spec = lease.get("spec") or {}
        holder = str(spec.get("holderIdentity") or "")
        observed = (holder, str(spec.get("renewTime") or ""))
        if observed != self.seen:
            self.seen, self.seen_at = observed, now
        expired = now - self.seen_at >= float(spec.get("leaseDurationSeconds") or
                                              self.lease_seconds)
        if holder and holder != self.identity and not expired:
            return False
        transitions = int(spec.get("leaseTransitions") or 0) + (holder != self.identity)
        body = self._spec(transitions)
        if holder == self.identity:
            body.pop("acquireTime")
        try:
            self.api.patch("leases", self.namespace, self.name, {
                "metadata": {"resourceVersion": lease["metadata"]["resourceVersion"]},
                "spec": body})
        except ApiError:
            return self.leading
        self.renewed_at = now
        return True

    def release(self) -> None:
        """Step down: clear the holder so another replica need not wait for expiry."""
        if not self.leading:
            return
        try:
            lease = self.api.get("leases", self.namespace, self.name)
            if (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                self.api.patch("leases", self.namespace, self.name, {
                    "metadata": {"resourceVersion": lease["metadata"]["resourceVersion"]},
                    "spec": {"holderIdentity": "", "renewTime": microtime(self.wall())}})
        except ApiError:
            return
        self.renewed_at = -float("inf")
