"""The API budget: never above the rate, and fair across clusters."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from driver.budget import Budget


def run(budget: Budget[str], until: float) -> list[tuple[float, str]]:
    calls: list[tuple[float, str]] = []
    now = 0.0
    while now <= until:
        now_ = now
        resume = budget.drain(now_, lambda item, t=now_: calls.append((t, item)))
        if resume is None:
            break
        now = resume
    return calls


@given(qps=st.sampled_from([1.0, 10.0, 100.0]), burst=st.integers(1, 20),
       sizes=st.lists(st.integers(1, 50), min_size=1, max_size=6))
def test_calls_never_exceed_burst_plus_rate(qps: float, burst: int, sizes: list[int]) -> None:
    budget: Budget[str] = Budget(qps=qps, burst=burst)
    for i, n in enumerate(sizes):
        for j in range(n):
            budget.put(i, f"{i}-{j}")
    calls = run(budget, until=10_000.0)
    assert len(calls) == sum(sizes)
    times = [t for t, _ in calls]
    first = 0
    for last, t in enumerate(times):  # every one-second window: at most burst + qps calls
        while times[first] < t - 1.0 + 1e-9:
            first += 1
        assert last - first + 1 <= burst + qps + 1e-9


def test_a_big_backlog_does_not_delay_a_small_cluster_by_more_than_one_turn() -> None:
    budget: Budget[str] = Budget(qps=100.0, burst=10)
    for j in range(1000):
        budget.put("big", f"big-{j}")
    calls: list[tuple[float, str]] = []
    now = 0.0
    resume = budget.drain(now, lambda item: calls.append((now, item)))
    for k in range(50):  # small clusters arrive while the big backlog waits
        budget.put(f"small-{k}", f"small-{k}")
    assert resume is not None
    for _ in range(200):
        now = resume
        resume = budget.drain(now, lambda item, t=now: calls.append((t, item)))
        if resume is None:
            break
    order = [item for _, item in calls]
    for k in range(50):
        position = order.index(f"small-{k}")
        before = [o for o in order[:position] if o.startswith("big")]
        assert len(before) <= 10 + k + 1  # the burst, then at most one big call per turn
