"""The planner's shortcuts never change a decision.

The engine skips work it can prove useless: clusters nothing happened to are not planned,
a worker going Pending -> Running dirties nothing, an autoscaler pass that cannot remove or
add anything is not run. `exhaustive=True` turns every shortcut off; on any timeline both
modes must emit exactly the same actions.
"""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from engine import autoscaler, load
from engine import state as stmod
from tests.builders import raycluster, set_workers
from tests.engine.timelines import KEYS, encoded, ops, run
from tests.engine.world import World


def world(*, exhaustive: bool, low: int, high: int) -> World:
    w = World(state=stmod.initial(synced=True, exhaustive=exhaustive))
    for key in KEYS:
        obj = set_workers(raycluster(key[1], key[0]), min_workers=low, max_workers=high)
        obj["spec"]["maxWorkers"] = high
        obj["spec"]["idleTimeoutMinutes"] = 1
        w.apply_cluster(obj)
    return w


def assert_same_decisions(a: World, b: World, steps: list[tuple[object, ...]]) -> None:
    for op in steps:
        run(a, op)
        run(b, op)
        assert encoded(a.actions) == encoded(b.actions)


@settings(max_examples=300, deadline=None)
@given(low=st.integers(0, 2), extra=st.integers(0, 5), delta=st.booleans(),
       steps=st.lists(ops, max_size=60))
def test_shortcuts_decide_exactly_what_the_exhaustive_engine_decides(
    low: int, extra: int, delta: bool, steps: list[tuple[object, ...]]
) -> None:
    """Also with delta reports, whose repeats on a settled cluster skip the pass."""
    fast = world(exhaustive=False, low=low, high=low + extra)
    slow = world(exhaustive=True, low=low, high=low + extra)
    fast.delta = slow.delta = delta
    assert_same_decisions(fast, slow, steps)


@settings(max_examples=150, deadline=None)
@given(low=st.integers(0, 2), extra=st.integers(0, 5), steps=st.lists(ops, max_size=60))
def test_partial_load_reports_decide_like_complete_ones(
    low: int, extra: int, steps: list[tuple[object, ...]]
) -> None:
    full = world(exhaustive=False, low=low, high=low + extra)
    delta = world(exhaustive=False, low=low, high=low + extra)
    delta.delta = True
    assert_same_decisions(full, delta, steps)


@settings(max_examples=100, deadline=None)
@given(delta=st.booleans(), steps=st.lists(ops, max_size=60))
def test_free_totals_the_free_map_and_the_joined_nodes_follow_the_report(
    delta: bool, steps: list[tuple[object, ...]]
) -> None:
    w = world(exhaustive=False, low=0, high=4)
    w.delta = delta
    for op in steps:
        run(w, op)
        for cs in w.state.clusters.values():
            assert list(cs.node_free.items()) == [
                (ip, node.available) for ip, (node, _) in cs.ray_nodes.items()
            ]
            expected: dict[str, float] = {}
            for node, _ in cs.ray_nodes.values():
                load.add_free(expected, node.available, 1.0)
            assert {k: v for k, v in cs.free_total.items() if v} == {
                k: v for k, v in expected.items() if v
            }
            joined = {ip: cs.live_ips[ip].pod_type for ip in cs.node_free if ip in cs.live_ips}
            assert cs.joined == joined
            assert cs.connected == dict(Counter(joined.values()))


def test_a_repeated_report_still_removes_workers_that_passed_their_idle_timeout() -> None:
    """Repeats of one delta report skip the pass on a settled cluster, but not once an idle
    worker's timeout (1 min here) has passed since."""
    worlds = [world(exhaustive=mode, low=0, high=4) for mode in (False, True)]
    key = KEYS[0]
    for w in worlds:
        w.delta = True
        w.report_load(key, pending=[({"CPU": 1.0}, 3)])
        w.advance(5.0)
        for _ in range(4):  # idle since 10 s before the first: 10, 15, 20, 25 s
            w.report_load(key, idle=10.0)
            w.advance(5.0)
        assert w.live(key) > 0
        w.advance(40.0)
        w.report_load(key, idle=10.0)  # the same report, 70 s idle now
        w.settle()
        assert w.live(key) == 0
    assert encoded(worlds[0].actions) == encoded(worlds[1].actions)


def test_a_reported_pod_of_a_type_gone_from_the_spec_is_connected_but_no_node() -> None:
    """The pass's node view leaves out reported pods whose type the spec no longer has
    (they are removed as "not in available_node_types"), but counts them as connected."""
    w = world(exhaustive=False, low=2, high=2)
    key = KEYS[0]
    w.settle()
    w.report_load(key)
    cs = w.state.clusters[key]
    types = autoscaler.node_types(cs)
    head_type = cs.pods[cs.head].pod_type
    without = {name: t for name, t in types.items() if name == head_type}
    runs, counts, connected = autoscaler._node_runs(cs, without, set())
    assert connected == {head_type: 1, "worker-node": 2}
    assert counts == {head_type: 1}
    assert [r.count for r in runs] == [1]
