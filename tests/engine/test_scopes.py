"""The scope value: what it covers, how it is read from flags and environment, precedence."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine import scopes
from engine.scopes import EVERYWHERE, Scope, ScopeError

names = st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True)


@given(namespace=names)
def test_everywhere_covers_every_namespace(namespace: str) -> None:
    assert EVERYWHERE.covers(namespace) and EVERYWHERE.cluster_wide


@given(chosen=st.sets(names, min_size=1, max_size=5), other=names)
def test_a_list_covers_exactly_its_namespaces(chosen: set[str], other: str) -> None:
    scope = scopes.only(chosen)
    assert all(scope.covers(n) for n in chosen)
    assert scope.covers(other) == (other in chosen)


@given(a=st.sets(names, min_size=1, max_size=5), b=st.sets(names, min_size=1, max_size=5))
def test_narrower_is_a_strict_order_with_everywhere_last(a: set[str], b: set[str]) -> None:
    sa, sb = scopes.only(a), scopes.only(b)
    assert not (sa.narrower_than(sb) and sb.narrower_than(sa))
    assert sa.narrower_than(EVERYWHERE) and not EVERYWHERE.narrower_than(sa)


def test_one_namespace_is_narrower_than_a_list() -> None:
    assert scopes.only(["ray"]).narrower_than(scopes.only(["ray", "team-a"]))


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, EVERYWHERE),
        ({"env": {"RAY_OPERATOR_POD_NAMESPACE": "ray"}}, Scope(namespaces=frozenset({"ray"}))),
        ({"env": {"RAY_OPERATOR_POD_NAMESPACE": " "}}, EVERYWHERE),
        ({"namespace": "a", "env": {"RAY_OPERATOR_POD_NAMESPACE": "ray"}},
         Scope(namespaces=frozenset({"a"}))),
        ({"watch": "a, b"}, Scope(namespaces=frozenset({"a", "b"}))),
    ],
)
def test_resolve_from_flags_and_environment(kwargs: dict[str, object], expected: Scope) -> None:
    assert scopes.resolve(**kwargs) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"namespace": "a", "watch": "b"}, "expected at most one"),
        ({"watch": "Bad_Name"}, "not valid namespace names"),
        ({"watch": " , "}, "expected at least one namespace"),
    ],
)
def test_bad_scopes_name_the_problem(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ScopeError, match=message):
        scopes.resolve(**kwargs)  # type: ignore[arg-type]
