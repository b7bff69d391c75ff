"""The management graph and its invariants."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from engine import ownership, scopes
from engine.scopes import EVERYWHERE

NS = ["ray", "team-a", "team-b"]


def check(acting: dict[tuple[str, str], list[str]], *, settled: bool = True) -> list[str]:
    installs = {"wide": EVERYWHERE, "narrow": scopes.only(["ray"])}
    clusters = [("ray", "a"), ("team-a", "b")]
    pods = [("ray", "a-head-0", "a"), ("team-a", "b-head-0", "b")]
    g = ownership.build(installs=installs, clusters=clusters, pods=pods, acting=acting)
    return ownership.violations(g, settled=settled)


def test_a_wider_install_managing_where_a_narrower_covers_is_a_violation_once_settled() -> None:
    acting = {("ray", "a"): ["wide"], ("team-a", "b"): ["wide"]}
    assert check(acting, settled=False) == []
    assert check(acting) == ["wide manages ray/a though narrow covers it with a narrower scope"]


def test_one_acting_install_per_cluster_is_clean() -> None:
    assert check({("ray", "a"): ["narrow"], ("team-a", "b"): ["wide"]}) == []


def test_two_acting_installs_is_a_violation() -> None:
    found = check({("ray", "a"): ["narrow", "wide"], ("team-a", "b"): ["wide"]})
    assert found == ["ray/a has 2 acting installs: narrow, wide"]


def test_acting_outside_the_scope_is_a_violation() -> None:
    found = check({("ray", "a"): ["narrow"], ("team-a", "b"): ["narrow"]})
    assert found == ["narrow acts on team-a/b outside its scope (namespaces ray)"]


def test_an_unmanaged_cluster_in_scope_is_a_violation_once_settled() -> None:
    assert check({("ray", "a"): ["narrow"]}, settled=False) == []
    assert check({("ray", "a"): ["narrow"]}) == [
        "team-a/b is in the scope of wide but no install manages it"]


@given(acting=st.dictionaries(st.sampled_from([("ray", "a"), ("team-a", "b")]),
                              st.lists(st.sampled_from(["wide", "narrow"]), min_size=1,
                                       max_size=2, unique=True)))
def test_violations_are_exactly_the_broken_rules(acting: dict[tuple[str, str], list[str]]) -> None:
    found = check(acting, settled=False)
    expected = sum(len(v) > 1 for v in acting.values()) + sum(
        1 for (ns, _), v in acting.items() for i in v if i == "narrow" and ns != "ray")
    assert len(found) == expected
