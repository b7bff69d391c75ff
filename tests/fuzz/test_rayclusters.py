"""No RayCluster can crash the engine or disturb another cluster (proof by fuzzing).

Each hostile object (generated from the CRD's schema, or a valid cluster mutated) is folded
and planned next to a healthy cluster, and:
- the healthy cluster's actions are exactly those it gets alone;
- no fault reaches the bulkhead: the hostile cluster either runs, or is in phase Error
  naming a field (`InternalError` would mean validation missed something);
- every pod and Service it gets is one the API server accepts: Kubernetes' OpenAPI
  schema (kubernetes-validate), its name, label, annotation and port rules, and
  serializable as JSON.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
from typing import Any

import kubernetes_validate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import actions as act
from engine import checks, claims
from engine import events as ev
from engine.phases import Phase
from tests.builders import raycluster
from tests.engine.world import World
from tests.fuzz import strategies
from tests.fuzz.conftest import EXAMPLES, TRIED

HOSTILE = ("ray", "hostile")
GOOD = ("ray", "good")
FIELD = re.compile(r'^(object|apiVersion|kind|metadata(\.\w+)?|spec)'
                   r'(\.[\w-]+|\["(?:[^"\\]|\\.)*"\]|\[[^\]"]*\])*: ')
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def run(hostile: dict[str, Any] | None) -> World:
    world = World()
    if hostile is not None:
        world.send(ev.ClusterSeen(cluster=HOSTILE, at=0.0, uid="uid-hostile", generation=1,
                                  obj=hostile))
    world.apply_cluster(raycluster("good"))
    world.settle()
    world.advance(30)
    return world


@functools.cache
def alone() -> list[act.Action]:
    return [a for a in run(None).actions if a.cluster == GOOD]


def accepted(manifest: dict[str, Any]) -> None:
    """Raise unless the API server would accept `manifest` as the operator sends it."""
    json.dumps(manifest, allow_nan=False)
    # Not strict: the API server drops unknown fields (with a warning), it does not refuse.
    kubernetes_validate.validate(manifest, "1.37.0", strict=False)
    meta = manifest["metadata"]
    assert checks.dns_subdomain(meta["name"]) is None, meta["name"]
    for key, value in (meta.get("labels") or {}).items():
        assert checks.label_key(key) is None and checks.label_value(value) is None, key
    notes = meta.get("annotations") or {}
    assert all(checks.label_key(k) is None for k in notes)
    assert sum(len(k.encode()) + len(v.encode()) for k, v in notes.items()) <= 256 * 1024
    spec = manifest["spec"]
    for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        assert checks.dns_label(container["name"]) is None
        assert all(checks.env_name(e["name"]) is None for e in container.get("env") or [])
        for port in container.get("ports") or []:  # null is an empty list to the API
            assert 1 <= port["containerPort"] <= 65535
    for port in spec.get("ports") or []:  # a Service
        assert 1 <= port["port"] <= 65535 and checks.dns_label(port["name"]) is None


@FUZZ
@given(strategies.rayclusters())
def test_no_raycluster_crashes_the_engine_or_disturbs_another(obj: dict[str, Any]) -> None:
    TRIED["RayCluster objects"] += 1
    world = run(obj)
    assert [a for a in world.actions if a.cluster == GOOD] == alone()
    cs = world.state.clusters[HOSTILE]
    assert cs.error_reason != "InternalError", cs.problems[:300]
    if cs.phase is Phase.ERROR:
        assert FIELD.match(cs.problems), cs.problems[:300]
        assert not any(isinstance(a, act.CreatePod) for a in world.actions
                       if a.cluster == HOSTILE)
        return
    TRIED["RayCluster objects that run"] += 1
    for action in world.actions:
        if isinstance(action, act.CreatePod) and action.cluster == HOSTILE:
            accepted(action.manifest)
        elif isinstance(action, act.ApplyService) and action.cluster == HOSTILE:
            accepted(dict(action.manifest))


def claim_text(body: Any) -> str:
    try:
        return json.dumps(body, default=str)
    except (ValueError, RecursionError):  # too long to print, or too deep: no API object
        return "{}"


CLAIMS = st.one_of(
    st.text(), st.integers(1, 5_000).map(lambda n: "[" * n),
    st.fixed_dictionaries({}, optional={k: strategies.HOSTILE for k in (
        "install", "epoch", "rank", "handoff", "contenders")}).map(claim_text))


@FUZZ
@given(CLAIMS)
def test_any_claim_annotation_is_a_claim_or_refused_as_garbled(text: str) -> None:
    TRIED["claim annotations"] += 1
    with contextlib.suppress(claims.BadClaim):
        claims.parse({"metadata": {"annotations": {claims.ANNOTATION: text}}})
