"""An API request budget shared fairly by the clusters of one operator install.

A token bucket (`qps` per second, up to `burst`) limits how fast the install calls the API,
as client-go's rate limiter does. Calls wait in one queue per cluster, and the queues are
served round-robin, one call per cluster per turn: a cluster scaling by 1,000 pods cannot
delay another cluster's first call by more than one turn (the opposite of kuberay#3909, where
one cluster waited 10 minutes behind another). Time comes from the caller.
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
    queues: OrderedDict[object, deque[T]] = field(factory=OrderedDict)
    queued: int = 0

    def __attrs_post_init__(self) -> None:
        if self.qps <= 0 or self.burst < 1:
            raise ValueError(f"budget: expected qps > 0 and burst >= 1, got {self.qps}, "
                             f"{self.burst}")
        self.tokens = float(self.burst)

    def put(self, key: object, item: T) -> None:
        queue = self.queues.get(key)
        if queue is None:
            queue = self.queues[key] = deque()
        queue.append(item)
        self.queued += 1

    def _refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(float(self.burst), self.tokens + (now - self.updated) * self.qps)
            self.updated = now

    def drain(self, now: float, call: Callable[[T], None]) -> float | None:
        """Make the calls the budget allows now, fairly; return when to come back (or None)."""
        self._refill(now)
        while self.queues and self.tokens >= 1.0 - 1e-9:
            key, queue = next(iter(self.queues.items()))
            item = queue.popleft()
            self.queued -= 1
            self.tokens -= 1.0
            if queue:
                self.queues.move_to_end(key)  # the next cluster's turn
            else:
                del self.queues[key]
            call(item)
        if not self.queues:
            return None
        return now + max(0.0, 1.0 - self.tokens) / self.qps
