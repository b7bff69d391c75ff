"""Properties of the engine under random timelines (Hypothesis).

- never above a maximum and never a double delete, however replies and watch events
  interleave (each stream keeps its own order, as watches and replies do);
- once the world settles, min <= live <= max per type;
- the same events always give the same actions (replay);
- restoring a snapshot and folding the tail equals folding everything.
"""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from engine import codec, planner, snapshots
from engine import state as stmod
from tests.engine.timelines import KEYS, bounded_world, encoded, ops, run
from tests.engine.world import World


def check_bounds(world: World, high: int) -> None:
    for key in KEYS:
        assert world.live(key) <= high, (key, world.live(key))
        assert len(world.heads(key)) <= 1
    assert world.double_deletes == []


@settings(max_examples=150, deadline=None)
@given(low=st.integers(0, 3), extra=st.integers(0, 4), steps=st.lists(ops, max_size=60))
def test_never_above_max_nor_a_double_delete_under_stale_views(
    low: int, extra: int, steps: list[tuple[object, ...]]
) -> None:
    world = bounded_world(low, low + extra)
    for op in steps:
        run(world, op)
        check_bounds(world, low + extra)


@settings(max_examples=100, deadline=None)
@given(low=st.integers(0, 3), extra=st.integers(0, 4), steps=st.lists(ops, max_size=40))
def test_settled_workers_are_within_bounds(
    low: int, extra: int, steps: list[tuple[object, ...]]
) -> None:
    world = bounded_world(low, low + extra)
    for op in steps:
        run(world, op)
    world.settle()
    world.advance(400.0)  # past backoff: heads are back
    for key in KEYS:
        world.report_load(key)
    world.advance(10.0)
    for key in KEYS:
        assert low <= world.live(key, "worker-node") <= low + extra
        assert len(world.heads(key)) == 1


@settings(max_examples=60, deadline=None)
@given(steps=st.lists(ops, max_size=50))
def test_replaying_the_events_gives_the_same_actions(steps: list[tuple[object, ...]]) -> None:
    world = bounded_world(1, 4)
    for op in steps:
        run(world, op)
    world.settle()
    state = stmod.initial(synced=True)
    replayed = []
    for event in world.events:
        decoded = codec.event_from_dict(json.loads(json.dumps(codec.event_to_dict(event))))
        state, actions = planner.step(state, decoded)
        replayed.extend(actions)
    assert encoded(replayed) == encoded(world.actions)


@settings(max_examples=60, deadline=None)
@given(steps=st.lists(ops, max_size=50), cut=st.integers(0, 10_000))
def test_snapshot_plus_tail_equals_the_full_fold(
    steps: list[tuple[object, ...]], cut: int
) -> None:
    world = bounded_world(1, 4)
    for op in steps:
        run(world, op)
    events = world.events
    cut = cut % (len(events) + 1)
    head_state = stmod.initial(synced=True)
    for event in events[:cut]:
        head_state, _ = planner.step(head_state, event)
    data = json.loads(json.dumps(snapshots.snapshot(head_state)))
    resumed = snapshots.restore(data)
    tail_actions = []
    for event in events[cut:]:
        resumed, actions = planner.step(resumed, event)
        tail_actions.extend(actions)
    assert snapshots.snapshot(resumed) == snapshots.snapshot(world.state)
    assert encoded(tail_actions) == encoded(world.actions[len(world.actions) - len(tail_actions):])


@settings(max_examples=60, deadline=None)
@given(steps=st.lists(ops, max_size=50))
def test_planning_reads_the_state_only(steps: list[tuple[object, ...]]) -> None:
    """`plan` is a query: planning twice gives the same actions, and the state's snapshot
    is the same before and after (the caches it fills are memos a snapshot leaves out);
    only `record` folds a decision in."""
    world = bounded_world(1, 4)
    for op in steps:
        run(world, op)
    world.settle()
    state = stmod.initial(synced=True)
    for event in world.events:
        state = stmod.evolve(state, event)
        before = snapshots.snapshot(state)
        first = planner.plan(state, event.at)
        assert encoded(list(planner.plan(state, event.at))) == encoded(list(first))
        assert snapshots.snapshot(state) == before
        planner.record(state, first)
