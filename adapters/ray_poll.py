"""Polling every managed cluster's Ray head for its load, off the main loop.

Every `interval` seconds the loop asks `due` which clusters to read: those this install holds
whose head pod runs. Each read (`adapters.ray_load.read`) runs on a small thread pool, so a
slow or unreachable head never stalls the loop or the other clusters; at most one read per
cluster is in flight. A finished read is handed back through `deliver` (the process queues it
as an engine event). A head that cannot be read is normal while Ray starts. Once its load
has been read, `grace` seconds without a good read give the cluster one `RayUnreachable`,
which the engine treats as autoscaling failing (AutoscalingExceptionRecovery, a head
restart). A head never read
since its pod started is not restarted for it: nothing shows Ray ever ran there (a
simulated head, a head image without Ray, an address the operator cannot reach), and
restarting would not change that. After `grace` seconds the operator says so once and the
cluster's workers follow minWorkers and maxWorkers until a read succeeds. Failures are
logged with the cluster's prefix, once per kind of failure.

The poller is also the operator's link to the heads for drains (`drain`, the
`driver.operator.RayLink`): each is asked on the same pool and answered through `deliver`;
and with each read it writes what `ray status` shows there (`engine.raystatus`, built on
the loop from the engine's state, written on the pool).
"""

from __future__ import annotations

import concurrent.futures
import json
from collections.abc import Callable
from typing import Any

from attrs import define, field

from adapters import ray_load
from driver.execute import result
from engine import actions as act
from engine import events as ev
from engine import raystatus
from engine import state as st

ADDRESS = "{service}.{namespace}.svc:{port}"
"""Where a head's GCS is, by default: its Service's cluster DNS name and the head's port."""


def address_of(cs: st.ClusterState, template: str) -> str | None:
    """The GCS address of the cluster's running head, or None if it has none."""
    spec = cs.spec
    head = cs.pods.get(cs.head) if cs.head else None
    if spec is None or head is None or not cs.head_running or not head.ip:
        return None
    return template.format(service=spec.service_name, namespace=cs.key[0], cluster=cs.key[1],
                           ip=head.ip, port=spec.head_port)


@define
class Watch:
    """What the poller remembers of one cluster."""

    since: float  # the head was first seen running, or the last good read
    failure: str = ""  # the last failure logged
    reported: bool = False  # RayUnreachable sent (or, never read, the fact told)
    read: bool = False  # a good read since the head pod was first seen running


@define
class Poller:
    deliver: Callable[[ev.Event], None]
    log: Callable[[str], None]
    clock: Callable[[], float]
    template: str = ADDRESS
    interval: float = 5.0
    grace: float = 60.0
    timeout: float = 5.0
    read: Callable[..., Any] = ray_load.read
    pool: concurrent.futures.Executor = field(
        factory=lambda: concurrent.futures.ThreadPoolExecutor(
            max_workers=8, thread_name_prefix="ray-load"))
    inflight: set[ev.ClusterKey] = field(factory=set)
    watches: dict[ev.ClusterKey, Watch] = field(factory=dict)
    drain_node: Callable[..., Any] = ray_load.drain
    write_status: Callable[..., Any] = ray_load.publish
    status: bool = True  # publish what `ray status` shows to each head read
    status_failed: set[str] = field(factory=set)  # heads whose status write failed (told)
    addresses: dict[ev.ClusterKey, str] = field(factory=dict)  # of the heads read last

    def due(self, state: st.State, now: float) -> None:
        """Start a read of every held cluster with a running head (called on the loop)."""
        me = state.install
        live: set[ev.ClusterKey] = set()
        for key, cs in state.clusters.items():
            if me is not None and (cs.claim is None or cs.claim.install != me.name):
                continue
            address = address_of(cs, self.template)
            if address is None:
                continue
            live.add(key)
            self.addresses[key] = address
            watch = self.watches.setdefault(key, Watch(since=now))
            if key in self.inflight:
                continue
            self.inflight.add(key)
            view = None
            if watch.read and self.status:  # what `ray status` shows, built on the loop
                view = (json.dumps(raystatus.report(cs, now)).encode(),
                        raystatus.notes(cs, now).encode())
            self.pool.submit(self._read, key, address, watch, view)
        for key in list(self.watches):
            if key not in live:  # no running head now: a new one gets a new grace period
                del self.watches[key]
                self.addresses.pop(key, None)

    def _publish(self, name: str, address: str, view: tuple[bytes, bytes]) -> None:
        """Write what `ray status` shows; a failure is told once and the load still read."""
        try:
            self.write_status(address, *view, timeout=self.timeout)
            self.status_failed.discard(address)
        except Exception as exc:
            if address not in self.status_failed:
                self.status_failed.add(address)
                self.log(f"{name}: WARNING cannot write the status ray status shows: {exc}")

    def drain(self, action: act.DrainNode, at: float) -> ev.ActionResult | None:
        """Ask the cluster's head to drain one node, off the loop (`driver.operator.RayLink`):
        the answer comes back through `deliver` as the action's result."""
        address = self.addresses.get(action.cluster)
        if address is None:
            return result(action, at, ev.FAILED_OUTCOME, "the cluster's Ray head is not running")
        self.pool.submit(self._drain, action, address)
        return None

    def _drain(self, action: act.DrainNode, address: str) -> None:
        try:
            answer = self.drain_node(address, action.ip, message=action.message,
                                     deadline=action.deadline, timeout=self.timeout)
            outcome = ev.DONE if answer.accepted else ev.REFUSED
            reason = answer.reason
        except Exception as exc:  # any failure of a head is data
            outcome, reason = ev.FAILED_OUTCOME, str(exc)
            self.log(f"{action.cluster[1]},{action.cluster[0]}: WARNING {reason}")
        self.deliver(result(action, self.clock(), outcome, reason))

    def _read(self, key: ev.ClusterKey, address: str, watch: Watch,
              view: tuple[bytes, bytes] | None = None) -> None:
        name = f"{key[1]},{key[0]}"
        try:
            reading = self.read(address, timeout=self.timeout)
            if view is not None:
                self._publish(name, address, view)
            now = self.clock()
            event: ev.Event = ray_load.to_event(reading, cluster=key, at=now)
            if watch.failure:
                self.log(f"{name}: INFO reading Ray load from {address} again")
            watch.since, watch.failure, watch.reported, watch.read = now, "", False, True
        except Exception as exc:  # any failure of a head (LoadError or worse) is data
            now = self.clock()
            reason = str(exc)
            if reason.split(":")[0] != watch.failure.split(":")[0]:
                self.log(f"{name}: WARNING cannot read Ray load yet: {reason}")
            watch.failure = reason
            if watch.reported or now - watch.since < self.grace:
                self.inflight.discard(key)
                return
            watch.reported = True
            if not watch.read:
                self.log(f"{name}: WARNING no Ray answered at {address} in "
                         f"{now - watch.since:.0f} s since the head started: its workers "
                         "follow minWorkers and maxWorkers until Ray answers (the head is "
                         "not restarted for this)")
                self.inflight.discard(key)
                return
            event = ev.RayUnreachable(cluster=key, at=now, reason=(
                f"the Ray head at {address} could not be read for {now - watch.since:.0f} s: "
                f"{reason}"))
        self.inflight.discard(key)
        self.deliver(event)

    def stop(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
