"""Which namespaces an operator install watches and acts in: a value, testable on its own.

Three kinds, as the legacy operator and KubeRay offer them:
- every namespace (cluster-scoped; the legacy default);
- one namespace (`--namespace NS` or `RAY_OPERATOR_POD_NAMESPACE`, as the legacy chart sets);
- a list of namespaces (KubeRay's `--watch-namespace a,b`).

Precedence between installs whose scopes overlap: the narrowest scope wins in the
namespaces it covers; `rank` orders scopes so that a smaller rank is narrower (one namespace,
then a list by its length, then everything).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from attrs import field, frozen

_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
ENV = "RAY_OPERATOR_POD_NAMESPACE"


class ScopeError(ValueError):
    """A namespace list or flag that cannot be a scope (the message names what is wrong)."""


@frozen(kw_only=True)
class Scope:
    """`namespaces` None means every namespace."""

    namespaces: frozenset[str] | None = field(default=None)

    def covers(self, namespace: str) -> bool:
        return self.namespaces is None or namespace in self.namespaces

    @property
    def cluster_wide(self) -> bool:
        return self.namespaces is None

    @property
    def rank(self) -> int:
        """Narrower scopes have smaller ranks; an install with the smaller rank wins."""
        return 2**31 if self.namespaces is None else len(self.namespaces)

    def narrower_than(self, other: Scope) -> bool:
        return self.rank < other.rank

    def __str__(self) -> str:
        if self.namespaces is None:
            return "all namespaces"
        return "namespaces " + ",".join(sorted(self.namespaces))


EVERYWHERE = Scope()


def only(namespaces: Iterable[str]) -> Scope:
    """A scope of the given namespaces; each must be a DNS-1123 label."""
    names = frozenset(n.strip() for n in namespaces if n.strip())
    if not names:
        raise ScopeError("namespaces: expected at least one namespace, got none")
    bad = sorted(n for n in names if not _NAMESPACE.match(n) or len(n) > 63)
    if bad:
        raise ScopeError(f"namespaces: {bad} are not valid namespace names (DNS-1123 labels)")
    return Scope(namespaces=names)


def resolve(*, namespace: str | None = None, watch: str | None = None,
            env: Mapping[str, str] | None = None) -> Scope:
    """The scope from the process's flags and environment, in order of precedence:
    `--namespace NS`, then `--watch-namespace a,b`, then `RAY_OPERATOR_POD_NAMESPACE`, else
    every namespace. Giving both flags is an error."""
    if namespace and watch:
        raise ScopeError("--namespace and --watch-namespace: expected at most one of them")
    if namespace:
        return only([namespace])
    if watch:
        return only(watch.split(","))
    value = (env or {}).get(ENV, "")
    return only([value]) if value.strip() else EVERYWHERE
