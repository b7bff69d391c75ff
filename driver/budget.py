"""An API request budget shared fairly by the clusters of one operator install.

A token bucket (`qps` per second, up to `burst`) limits how fast the install calls the API,
as client-go's rate limiter does. Calls wait in one queue per cluster and priority class;
the most urgent class with work goes first, and within it the clusters' queues are served
round-robin, one call per cluster per turn: a cluster scaling by 1,000 pods cannot delay
another cluster's first pod by more than one turn (the opposite of kuberay#3909, where one
cluster waited 10 minutes behind another). Time comes from the caller.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Generic, TypeVar

from attrs import define, field

T = TypeVar("T")


@define
class Budget(Generic[T]):
    qps: float
    burst: int
    tokens: float = field(init=False)
    updated: float = 0.0
    classes: dict[int, OrderedDict[object, deque[T]]] = field(factory=dict)
    queued: int = 0

    def __attrs_post_init__(self) -> None:
        if self.qps <= 0 or self.burst < 1:
            raise ValueError(f"budget: expected qps > 0 and burst >= 1, got {self.qps}, "
                             f"{self.burst}")
        self.tokens = float(self.burst)

    def put(self, key: object, item: T, priority: int = 0) -> None:
        """Queue `item` for cluster `key`; a lower `priority` number goes first."""
        queues = self.classes.get(priority)
        if queues is None:
            queues = self.classes[priority] = OrderedDict()
            self.classes = dict(sorted(self.classes.items()))
        queue = queues.get(key)
        if queue is None:
            queue = queues[key] = deque()
        queue.append(item)
        self.queued += 1

    def _refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(float(self.burst), self.tokens + (now - self.updated) * self.qps)
            self.updated = now

    def drain(self, now: float, call: Callable[[T], None]) -> float | None:
        """Make the calls the budget allows now, fairly; return when to come back (or None)."""
        self._refill(now)
        while self.queued and self.tokens >= 1.0 - 1e-9:
            queues = next(q for q in self.classes.values() if q)
            key, queue = next(iter(queues.items()))
            item = queue.popleft()
            self.queued -= 1
            self.tokens -= 1.0
            if queue:
                queues.move_to_end(key)  # the next cluster's turn
            else:
                del queues[key]
            call(item)
        if not self.queued:
            return None
        return now + max(0.0, 1.0 - self.tokens) / self.qps
