"""The phase table as a graph, and every (phase, trigger) pair."""

from __future__ import annotations

import networkx as nx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine import transitions
from engine.errors import IllegalTransition
from engine.phases import Phase
from engine.transitions import Trigger


def test_every_phase_is_reachable_from_the_initial_one() -> None:
    g = transitions.graph()
    assert nx.descendants(g, Phase.NONE) | {Phase.NONE} == set(Phase)


def test_no_phase_is_a_dead_end() -> None:
    g = transitions.graph()
    assert all(g.out_degree(p) > 0 for p in Phase if p is not Phase.NONE)
    # and from anywhere the cluster can get back to Running
    assert all(nx.has_path(g, p, Phase.RUNNING) for p in Phase)


@given(phase=st.sampled_from(Phase), trigger=st.sampled_from(Trigger))
def test_every_pair_is_a_legal_move_or_a_typed_error(phase: Phase, trigger: Trigger) -> None:
    try:
        after = transitions.next_phase(phase, trigger)
    except IllegalTransition as exc:
        assert (phase, trigger) not in transitions.TRANSITIONS
        assert exc.phase is phase and exc.trigger == trigger.value
    else:
        assert isinstance(after, Phase)
        assert transitions.TRANSITIONS[(phase, trigger)] is after


def test_failures_are_exactly_the_moves_into_recovery_from_a_loss() -> None:
    assert transitions.FAILURES
    for phase, trigger in transitions.FAILURES:
        assert transitions.next_phase(phase, trigger) is Phase.RECOVERY
        assert trigger in (Trigger.HEAD_LOST, Trigger.AUTOSCALING_FAILED)


@pytest.mark.parametrize("trigger", [Trigger.HEAD_RUNNING, Trigger.HEAD_LOST])
def test_head_events_before_the_cluster_is_seen_are_illegal(trigger: Trigger) -> None:
    with pytest.raises(IllegalTransition):
        transitions.next_phase(Phase.NONE, trigger)
