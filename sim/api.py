"""An in-memory Kubernetes API with the semantics controllers depend on.

controller-runtime's fake client is the warning (`pkg/client/fake/doc.go`): a fake whose
resourceVersion and generation do not behave gives false confidence. This one models:
- uid, a global resourceVersion counter, creationTimestamp, `generateName`;
- `generation` that bumps only when `spec` changes; `status` as a subresource (a patch of
  the main resource ignores status, a status patch touches nothing else);
- 409 on a taken name and on a stale resourceVersion precondition, 404 on a missing object;
- deletion with finalizers (deletionTimestamp first) and graceful pod deletion (the kubelet
  model removes the pod);
- ownerReference garbage collection: dependents go when their owner goes;
- label selectors (`=`, `==`, `!=`, `k`, `!k`, `in`, `notin`);
- watch history: every change has a resourceVersion; resuming from one that fell out of the
  history window answers 410 Gone, so clients must relist;
- faults: rules by verb, resource and count that fail a call *before* it changes anything.

Stored objects are never mutated: every write builds a new dict, so objects handed out
(also to watchers) stay valid snapshots. Callers must not mutate what they receive.
"""

from __future__ import annotations

import builtins
import functools
import json
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from attrs import define, field

from driver import kinds
from driver.execute import ApiError, Precondition
from engine.status import timestamp
from sim import objects
from sim.selectors import parse_fields, parse_selector

Obj = dict[str, Any]
Watcher = Callable[[str, str, Obj], None]

RESOURCES = {r: (kinds.api_version(r), kind) for r, (_, _, kind, _) in kinds.KINDS.items()}
WITH_STATUS = frozenset({"rayclusters", "pods"})
WITH_GENERATION = frozenset({"rayclusters"})
CLUSTER_SCOPED = frozenset({"namespaces"})
SNAPSHOTS = 64  # paged lists in progress the API remembers (older continue tokens expire)


@define
class Fault:
    """Fail the next `count` calls of `verb` on `resource` with `status` (0 = timeout)."""

    verb: str
    resource: str
    status: int
    count: int
    message: str = "injected fault"
    client: str = ""  # only this operator's calls ("" = every operator's)


@define
class Api:
    """The store, its clock and its watchers."""

    now: Callable[[], float] = lambda: 0.0
    history_limit: int = 100_000
    objects: dict[str, dict[tuple[str, str], Obj]] = field(
        factory=lambda: {r: {} for r in RESOURCES})
    rv: int = 0
    uids: int = 0
    live_uids: set[str] = field(factory=set)  # of objects that exist (owners for GC)
    names: int = 0
    watchers: list[Watcher] = field(factory=list)
    history: deque[tuple[int, str, str, Obj]] = field(factory=deque)
    faults: list[Fault] = field(factory=list)
    owned: dict[str, set[tuple[str, str, str]]] = field(factory=dict)
    calls: dict[str, int] = field(factory=dict)
    snapshots: dict[int, tuple[str, builtins.list[Obj]]] = field(factory=dict)  # continue
    snapshot_ids: int = 0
    canonical: dict[int, tuple[Obj, Obj]] = field(factory=dict)  # pod spec -> with strings

    # -- reads ---------------------------------------------------------------------------

    def get(self, resource: str, namespace: str, name: str) -> Obj:
        self._enter("get", resource)
        found = self.objects[resource].get((_ns(resource, namespace), name))
        if found is None:
            raise ApiError(404, "NotFound", f'{_qualified(resource)} "{name}" not found')
        return found

    def list(self, resource: str, namespace: str | None = None,
             selector: str | None = None, fields: str | None = None
             ) -> tuple[list[Obj], str]:
        self._enter("list", resource)
        match = parse_selector(selector) if selector else None
        field_match = parse_fields(resource, fields) if fields else None
        items = [
            obj for (ns, _), obj in sorted(self.objects[resource].items())
            if (namespace is None or ns == namespace)
            and (match is None or match((obj.get("metadata") or {}).get("labels") or {}))
            and (field_match is None or field_match(obj))
        ]
        return items, str(self.rv)

    def list_page(self, resource: str, namespace: str | None = None,
                  selector: str | None = None, *, limit: int = 0, token: str = "",
                  fields: str | None = None) -> tuple[builtins.list[Obj], str, str]:
        """One page of a list (Kubernetes `limit` and `continue`): the items, the snapshot's
        resourceVersion, and the token of the next page ("" after the last). Pages after the
        first come from the snapshot the first was cut from, as etcd serves them; only the
        last SNAPSHOTS snapshots are kept, and an older token gets 410 Expired."""
        if not token:
            items, rv = self.list(resource, namespace, selector, fields)
            if limit <= 0 or len(items) <= limit:
                return items, rv, ""
            self.snapshot_ids += 1
            ident, offset = self.snapshot_ids, 0
            self.snapshots[ident] = (rv, items)
            while len(self.snapshots) > SNAPSHOTS:
                del self.snapshots[next(iter(self.snapshots))]
        else:
            self._enter("list", resource)
            try:
                ident_text, offset_text = token.split(":")
                ident, offset = int(ident_text), int(offset_text)
            except ValueError:
                raise ApiError(400, "BadRequest", f"invalid continue token {token!r}") from None
            if ident not in self.snapshots:
                raise ApiError(410, "Expired", "the provided continue parameter is too old")
            rv, items = self.snapshots[ident]
        page = items[offset:offset + limit] if limit > 0 else items[offset:]
        if offset + len(page) >= len(items):
            self.snapshots.pop(ident, None)
            return page, rv, ""
        return page, rv, f"{ident}:{offset + len(page)}"

    def _quantities(self, spec: Obj) -> Obj:
        """The pod spec with resource quantities as strings (`cpu: 1` is stored as "1"), as
        the API server returns them: typed clients reject numbers there. Pods of one template
        share their spec, so each is converted once."""
        found = self.canonical.get(id(spec))
        if found is not None and found[0] is spec:
            return found[1]
        containers = spec.get("containers")
        if not isinstance(containers, list):
            return spec
        fixed = []
        for container in containers:
            resources = container.get("resources") if isinstance(container, dict) else None
            if not isinstance(resources, dict):
                fixed.append(container)
                continue
            fixed.append({**container, "resources": {
                k: ({q: v if isinstance(v, str) else f"{v:g}" if isinstance(v, float) else str(v)
                     for q, v in v_.items()} if isinstance(v_, dict) else v_)
                for k, v_ in resources.items()}})
        out = {**spec, "containers": fixed}
        if len(self.canonical) > 10_000:
            self.canonical.clear()
        self.canonical[id(spec)] = (spec, out)
        return out

    def events_since(self, resource_version: int) -> Iterator[tuple[int, str, str, Obj]]:
        """Watch events after `resource_version`; 410 Gone if the history lost some."""
        if self.history and resource_version < self.history[0][0] - 1:
            raise ApiError(410, "Expired",
                           f"too old resource version: {resource_version} ({self.history[0][0]})")
        for item in self.history:
            if item[0] > resource_version:
                yield item

    # -- writes --------------------------------------------------------------------------

    def create(self, resource: str, namespace: str, obj: Mapping[str, Any]) -> Obj:
        self._enter("create", resource)
        # What this call changes is copied; the rest is shared, which is safe because stored
        # objects are never mutated (every write builds new dicts).
        body: Obj = dict(obj)
        meta = body["metadata"] = dict(body.get("metadata") or {})
        ns = _ns(resource, namespace)
        name = meta.get("name")
        if not name:
            prefix = meta.get("generateName")
            if not prefix:
                raise ApiError(422, "Invalid", "metadata.name or generateName is required")
            self.names += 1
            name = f"{prefix}{objects.generated_suffix(self.names)}"
        if (ns, name) in self.objects[resource]:
            raise ApiError(409, "AlreadyExists", f'{_qualified(resource)} "{name}" already exists')
        if ns and ("", ns) not in self.objects["namespaces"]:  # NamespaceLifecycle admission
            raise ApiError(404, "NotFound", f'namespaces "{ns}" not found')
        if resource == "rayclusters":
            body = objects.admit(name, body)
            meta = body["metadata"]
        self.uids += 1
        api_version, kind = RESOURCES[resource]
        body.setdefault("apiVersion", api_version)
        body.setdefault("kind", kind)
        meta.update(name=name, uid=f"{self.uids:08d}-0000-4000-8000-{self.uids:012d}",
                    creationTimestamp=_stamp(self.now()))
        if ns:
            meta["namespace"] = ns
        if resource in WITH_GENERATION:
            meta["generation"] = 1
        if resource == "pods":
            body["status"] = {"phase": "Pending"}
            if isinstance(body.get("spec"), dict):
                body["spec"] = self._quantities(body["spec"])
        elif resource in WITH_STATUS:
            body.pop("status", None)
        elif resource == "namespaces":
            body["status"] = {"phase": "Active"}
        self._store(resource, ns, name, body, "ADDED")
        self.live_uids.add(meta["uid"])
        orphan = False
        for ref in meta.get("ownerReferences") or []:
            self.owned.setdefault(ref.get("uid", ""), set()).add((resource, ns, name))
            orphan = orphan or ref.get("uid", "") not in self.live_uids
        if orphan:  # its owner is gone: the garbage collector deletes it
            self._delete(resource, ns, name)
        return body

    def patch(self, resource: str, namespace: str, name: str, patch: Mapping[str, Any], *,
              resource_version: str | None = None) -> Obj:
        """A JSON merge patch of metadata and spec (status goes through `patch_status`)."""
        self._enter("patch", resource)
        if resource_version is None:  # as the API server: a resourceVersion in the patch
            resource_version = (patch.get("metadata") or {}).get("resourceVersion")
        old = self._existing(resource, namespace, name, resource_version)
        body = objects.merge(old, {k: v for k, v in patch.items()
                                   if k != "status" or resource not in WITH_STATUS})
        for fixed in ("name", "namespace", "uid", "creationTimestamp", "generation",
                      "resourceVersion", "deletionTimestamp"):
            if fixed in old["metadata"]:
                body["metadata"][fixed] = old["metadata"][fixed]
        if resource == "rayclusters":
            body = objects.admit(name, body)
        if resource in WITH_GENERATION and body.get("spec") != old.get("spec"):
            body["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1
        return self._update(resource, old, body)

    def replace(self, resource: str, namespace: str, name: str, obj: Mapping[str, Any]) -> Obj:
        """PUT: the whole object, with its resourceVersion as a precondition if given."""
        self._enter("replace", resource)
        meta = obj.get("metadata") or {}
        old = self._existing(resource, namespace, name, meta.get("resourceVersion"))
        body: Obj = json.loads(json.dumps(obj))
        body.setdefault("metadata", {}).update(
            {k: old["metadata"][k] for k in ("name", "namespace", "uid", "creationTimestamp")
             if k in old["metadata"]})
        if "deletionTimestamp" in old["metadata"]:
            body["metadata"]["deletionTimestamp"] = old["metadata"]["deletionTimestamp"]
        if resource in WITH_STATUS:
            body["status"] = old.get("status", {})
        if resource == "rayclusters":
            body = objects.admit(name, body)
        if resource in WITH_GENERATION:
            bump = 1 if body.get("spec") != old.get("spec") else 0
            body["metadata"]["generation"] = old["metadata"].get("generation", 1) + bump
        return self._update(resource, old, body)

    def patch_status(self, resource: str, namespace: str, name: str,
                     status: Mapping[str, Any], *, resource_version: str | None = None,
                     precondition: Precondition | None = None) -> Obj:
        self._enter("patch_status", resource)
        old = self._existing(resource, namespace, name, resource_version)
        if precondition is not None:
            objects.check_precondition(old, precondition)
        body = dict(old)
        body["status"] = objects.merge(old.get("status") or {}, status)
        if resource == "rayclusters":
            body = objects.admit(name, body)
        return self._update(resource, old, body)

    def delete(self, resource: str, namespace: str, name: str, *,
               uid: str | None = None, resource_version: str | None = None) -> None:
        self._enter("delete", resource)
        self._delete(resource, namespace, name, uid=uid, resource_version=resource_version)

    def _delete(self, resource: str, namespace: str, name: str, *,
                uid: str | None = None, resource_version: str | None = None) -> None:
        old = self._existing(resource, namespace, name, resource_version)
        if uid is not None and old["metadata"].get("uid") != uid:
            raise ApiError(409, "Conflict", f"uid precondition failed for {name}")
        if old["metadata"].get("deletionTimestamp"):
            return
        if old["metadata"].get("finalizers") or resource == "pods":
            body = dict(old)
            body["metadata"] = {**old["metadata"], "deletionTimestamp": _stamp(self.now())}
            self._update(resource, old, body)
            if resource != "pods" or not old.get("spec", {}).get("nodeName"):
                self._maybe_remove(resource, body)
            return
        self.remove(resource, old)

    def remove(self, resource: str, obj: Obj) -> None:
        """The object is gone (finalizers done, pod stopped): DELETED, then its dependents."""
        meta = obj["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        current = self.objects[resource].pop(key, None)
        if current is None:
            return
        self.live_uids.discard(current["metadata"].get("uid", ""))
        self._emit(resource, "DELETED", current)
        for ref in meta.get("ownerReferences") or []:
            self.owned.get(ref.get("uid", ""), set()).discard((resource, key[0], key[1]))
        for dep_resource, dep_ns, dep_name in sorted(self.owned.pop(meta.get("uid", ""), set())):
            dependent = self.objects[dep_resource].get((dep_ns, dep_name))
            if dependent is not None:  # the garbage collector's own delete: no client faults
                self._delete(dep_resource, dep_ns, dep_name)

    # -- internals -----------------------------------------------------------------------

    def _maybe_remove(self, resource: str, obj: Obj) -> None:
        if not obj["metadata"].get("finalizers"):
            self.remove(resource, obj)

    def _existing(self, resource: str, namespace: str, name: str,
                  resource_version: str | None) -> Obj:
        old = self.objects[resource].get((_ns(resource, namespace), name))
        if old is None:
            raise ApiError(404, "NotFound", f'{_qualified(resource)} "{name}" not found')
        if resource_version is not None and old["metadata"]["resourceVersion"] != resource_version:
            raise ApiError(409, "Conflict",
                           f"the object has been modified: resourceVersion {resource_version} "
                           f"is not {old['metadata']['resourceVersion']}")
        return old

    def _update(self, resource: str, old: Obj, body: Obj) -> Obj:
        if body == old:
            return old
        meta = body["metadata"] = dict(body["metadata"])
        self._store(resource, meta.get("namespace", ""), meta["name"], body, "MODIFIED")
        if meta.get("deletionTimestamp") and resource != "pods":
            self._maybe_remove(resource, body)
        return body

    def _store(self, resource: str, ns: str, name: str, body: Obj, kind: str) -> None:
        self.rv += 1
        body["metadata"]["resourceVersion"] = str(self.rv)
        self.objects[resource][(ns, name)] = body
        self._emit(resource, kind, body)

    def _emit(self, resource: str, kind: str, body: Obj) -> None:
        self.history.append((self.rv, resource, kind, body))
        while len(self.history) > self.history_limit:
            self.history.popleft()
        for watcher in list(self.watchers):
            watcher(resource, kind, body)

    def _enter(self, verb: str, resource: str) -> None:
        self.calls[f"{verb} {resource}"] = self.calls.get(f"{verb} {resource}", 0) + 1

    def check_faults(self, verb: str, resource: str, client: str = "") -> None:
        """Fail a client's call before it reaches the store, if a fault rule says so."""
        for fault in self.faults:
            if (fault.count > 0 and fault.verb in (verb, "*") and fault.resource in (resource, "*")
                    and fault.client in ("", client)):
                fault.count -= 1
                if fault.status == 0:
                    raise ApiError(0, "Timeout", fault.message)
                raise ApiError(fault.status, _REASONS.get(fault.status, "Error"), fault.message)


@define
class Client:
    """An operator's view of the API: the calls it makes can be made to fail (faults), and
    are counted per client. The kubelet, the garbage collector and timeline steps use the
    `Api` itself, so injected faults only ever hit the system under test."""

    api: Api
    calls: dict[str, int] = field(factory=dict)
    times: list[float] | None = None  # when each call was made, if asked to keep them
    name: str = ""  # the operator install it serves (faults can target it)
    landed: Callable[[Client, str, str, Obj], None] | None = None  # after each write

    def _call(self, verb: str, resource: str) -> None:
        key = f"{verb} {resource}"
        self.calls[key] = self.calls.get(key, 0) + 1
        if self.times is not None:
            self.times.append(self.api.now())
        self.api.check_faults(verb, resource, self.name)

    def get(self, resource: str, namespace: str, name: str) -> Obj:
        self._call("get", resource)
        return self.api.get(resource, namespace, name)

    def list(self, resource: str, namespace: str | None = None,
             selector: str | None = None, fields: str | None = None) -> tuple[list[Obj], str]:
        self._call("list", resource)
        return self.api.list(resource, namespace, selector, fields)

    def create(self, resource: str, namespace: str, obj: Mapping[str, Any]) -> Obj:
        self._call("create", resource)
        return self._landed("create", resource, self.api.create(resource, namespace, obj))

    def patch(self, resource: str, namespace: str, name: str, patch: Mapping[str, Any]) -> Obj:
        self._call("patch", resource)
        return self._landed("patch", resource, self.api.patch(resource, namespace, name, patch))

    def _landed(self, verb: str, resource: str, obj: Obj) -> Obj:
        if self.landed is not None:
            self.landed(self, verb, resource, obj)
        return obj

    def patch_status(self, resource: str, namespace: str, name: str,
                     status: Mapping[str, Any], *,
                     precondition: Precondition | None = None) -> Obj:
        self._call("patch_status", resource)
        return self._landed("patch_status", resource, self.api.patch_status(
            resource, namespace, name, status, precondition=precondition))

    def delete(self, resource: str, namespace: str, name: str, *, uid: str = "") -> None:
        self._call("delete", resource)
        old = self.api.objects[resource].get((_ns(resource, namespace), name))
        self.api.delete(resource, namespace, name, uid=uid or None)
        if old is not None:
            self._landed("delete", resource, old)


_REASONS = {409: "Conflict", 429: "TooManyRequests", 500: "InternalError",
            503: "ServiceUnavailable", 404: "NotFound", 403: "Forbidden"}


@functools.lru_cache(maxsize=4096)
def _stamp(seconds: float) -> str:
    return timestamp(seconds)


def _qualified(resource: str) -> str:
    """How the API server names a resource in its messages: `pods`, `rayclusters.cluster.ray.io`."""
    group = RESOURCES[resource][0].rpartition("/")[0]
    return f"{resource}.{group}" if group else resource


def _ns(resource: str, namespace: str) -> str:
    return "" if resource in CLUSTER_SCOPED else namespace


