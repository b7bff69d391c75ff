"""A state, its events and its actions copy and pickle to equal values, in both builds.

The compiled build's frozen dataclasses cannot be restored through `__setstate__`, so they
copy by their fields (`engine.events.copyable`); the pure build must agree (the suite also
runs compiled: tests/compiled/).
"""

from __future__ import annotations

import copy
import json
import pickle

from hypothesis import given, settings
from hypothesis import strategies as st

from engine import codec, snapshots
from tests.engine.timelines import bounded_world, encoded, ops, run


def _events(items: list[object]) -> list[str]:
    return [json.dumps(codec.event_to_dict(e), sort_keys=True) for e in items]  # type: ignore[arg-type]


@settings(max_examples=20, deadline=None)
@given(steps=st.lists(ops, min_size=5, max_size=40))
def test_states_events_and_actions_copy_and_pickle(steps: list[tuple[object, ...]]) -> None:
    world = bounded_world(1, 4)
    for op in steps:
        run(world, op)
    world.settle()
    want = snapshots.snapshot(world.state)
    for clone in (copy.deepcopy, lambda v: pickle.loads(pickle.dumps(v))):
        assert snapshots.snapshot(clone(world.state)) == want
        assert _events(clone(world.events)) == _events(world.events)
        assert encoded(clone(world.actions)) == encoded(world.actions)
