"""The lifecycle phase machine: one table, as data, and nothing else decides a phase.

House rules, as in h11's `_state.py`:
- every phase change of a RayCluster goes through `next_phase`, which reads `TRANSITIONS`;
- a (phase, trigger) pair that is not in the table raises `IllegalTransition`: the state
  module treats that as a bug in the caller, never as a silent no-op;
- triggers are *lifecycle* inputs that `engine.state` derives from observed facts (a pod
  event for the head pod becomes `HEAD_RUNNING` or `HEAD_LOST`), so this table does not know
  about Kubernetes objects at all.

Triggers:
- `SPEC_ACCEPTED`: a new generation of the RayCluster validated, head config unchanged.
- `SPEC_HEAD_CHANGED`: a new valid generation whose head pod config differs: Ray restarts.
- `SPEC_REJECTED`: the RayCluster is invalid.
- `HEAD_RUNNING`: the current head pod is Running.
- `HEAD_LOST`: the head pod died or vanished without the operator asking for it.
- `AUTOSCALING_FAILED`: the Ray head could not be read past its grace period.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

import networkx as nx

from engine.errors import IllegalTransition
from engine.phases import Phase


class Trigger(enum.Enum):
    SPEC_ACCEPTED = "SpecAccepted"
    SPEC_HEAD_CHANGED = "SpecHeadChanged"
    SPEC_REJECTED = "SpecRejected"
    HEAD_RUNNING = "HeadRunning"
    HEAD_LOST = "HeadLost"
    AUTOSCALING_FAILED = "AutoscalingFailed"


N, U, R, X, E = Phase.NONE, Phase.UPDATING, Phase.RUNNING, Phase.RECOVERY, Phase.ERROR
T = Trigger

TRANSITIONS: Mapping[tuple[Phase, Trigger], Phase] = {
    # First sight of a valid cluster: launch it.
    (N, T.SPEC_ACCEPTED): U,
    (N, T.SPEC_HEAD_CHANGED): U,
    # First sight of an invalid cluster.
    (N, T.SPEC_REJECTED): E,
    # Still launching; a new generation keeps launching.
    (U, T.SPEC_ACCEPTED): U,
    (U, T.SPEC_HEAD_CHANGED): U,
    (U, T.SPEC_REJECTED): E,
    # The head pod runs: the cluster is up.
    (U, T.HEAD_RUNNING): R,
    # The head died while launching (crash loop, failed container): recover with backoff.
    (U, T.HEAD_LOST): X,
    (U, T.AUTOSCALING_FAILED): X,
    # Running: bounds and speed edits apply live; a head config change restarts Ray.
    (R, T.SPEC_ACCEPTED): R,
    (R, T.SPEC_HEAD_CHANGED): U,
    (R, T.SPEC_REJECTED): E,
    (R, T.HEAD_RUNNING): R,
    (R, T.HEAD_LOST): X,
    (R, T.AUTOSCALING_FAILED): X,
    # Recovering: a new head running ends it; another failure counts again.
    (X, T.SPEC_ACCEPTED): X,
    (X, T.SPEC_HEAD_CHANGED): X,
    (X, T.SPEC_REJECTED): E,
    (X, T.HEAD_RUNNING): R,
    (X, T.HEAD_LOST): X,
    (X, T.AUTOSCALING_FAILED): X,
    # Error: only a valid spec leaves it; pods left from before are not touched.
    (E, T.SPEC_ACCEPTED): U,
    (E, T.SPEC_HEAD_CHANGED): U,
    (E, T.SPEC_REJECTED): E,
    (E, T.HEAD_RUNNING): E,
    (E, T.HEAD_LOST): E,
    (E, T.AUTOSCALING_FAILED): E,
}

# Triggers that count a failure: `autoscalerRetries` goes up by 1 and the restart backs off.
FAILURES: frozenset[tuple[Phase, Trigger]] = frozenset(
    key for key, target in TRANSITIONS.items()
    if target is Phase.RECOVERY and key[1] in (T.HEAD_LOST, T.AUTOSCALING_FAILED)
)


def next_phase(phase: Phase, trigger: Trigger) -> Phase:
    """The phase after `trigger`; raises `IllegalTransition` for a pair not in the table."""
    try:
        return TRANSITIONS[(phase, trigger)]
    except KeyError:
        raise IllegalTransition(phase, trigger.value) from None


def graph() -> nx.MultiDiGraph:
    """The table as a graph (phases as nodes, one labelled edge per trigger), for tests and docs."""
    g = nx.MultiDiGraph()
    g.add_nodes_from(Phase)
    for (source, trigger), target in TRANSITIONS.items():
        g.add_edge(source, target, trigger=trigger)
    return g
