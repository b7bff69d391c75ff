"""The live world's API client: `driver.execute.Api` over the official `kubernetes` client.

The driver speaks in resources ("pods", "rayclusters", ...) and plain dicts; this adapter
turns each call into the REST request a kube-apiserver expects, through the official client's
configuration, authentication and HTTP pool (`ApiClient.param_serialize` + `call_api`), and
answers with the JSON the server returned, as dicts, exactly as the simulator's API does.
Errors become `ApiError(status, reason)`; a timeout or a refused connection is status 0.
Preconditions travel as Kubernetes does them: a uid in DeleteOptions, a resourceVersion in a
merge patch, and a JSON Patch with `test` operations for the fenced status writes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import urllib3
from kubernetes import client as k8s

from driver.execute import ApiError, Precondition
from driver.kinds import KINDS

JSON = "application/json"
AUTH = ["BearerToken"]
"""The client's authentication for every call: a ServiceAccount's token (in a pod, or from a
kubeconfig), refreshed as the client refreshes it; client certificates need nothing here.
Without it the official client sends no token, and a real API server sees an anonymous user."""
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


def path(resource: str, namespace: str | None, name: str | None = None,
         subresource: str | None = None) -> str:
    group, version, _, namespaced = KINDS[resource]
    out = f"/apis/{group}/{version}" if group else f"/api/{version}"
    if namespaced and namespace:
        out += f"/namespaces/{namespace}"
    out += f"/{resource}"
    if name:
        out += f"/{name}"
    if subresource:
        out += f"/{subresource}"
    return out


def _pointer(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


RequestHook = Callable[[str, str, int, float], None]
"""Told of every request: verb, resource, HTTP status (0: no answer), seconds taken."""
MalformedHook = Callable[[str, str], None]
"""Told of every watch line that is not a usable event: resource, what was wrong."""
WATCH_TYPES = frozenset({"ADDED", "MODIFIED", "DELETED"})
RETRY_AFTER_CAP = 10.0  # the longest Retry-After honoured; longer ones fail the call
RETRIES_ON_429 = 3
NO_ANSWER = (OSError, urllib3.exceptions.HTTPError, k8s.exceptions.ApiException)
"""What the client raises when no HTTP answer came (refused, reset, timed out, retries
exhausted): all become `ApiError(0)`."""


def _quiet(*args: Any) -> None:
    return


def api_client(configuration: k8s.Configuration) -> k8s.ApiClient:
    """The official client for `configuration`, with urllib3 retrying lost connections only:
    a 429's Retry-After is honoured by `KubeApi` (capped, for every verb), not slept through
    again underneath by urllib3 (uncapped, for GETs only)."""
    configuration.retries = urllib3.Retry(total=3, respect_retry_after_header=False)
    return k8s.ApiClient(configuration)


class KubeApi:
    """One install's connection to the Kubernetes API.

    A 429 with Retry-After (the API server's priority and fairness asking for patience) is
    waited out and retried, up to three times and ten seconds each, as client-go does; other
    failures go back to the engine, which retries with its per-cluster backoff. Lists come
    in pages of `page_size`, so a list of 100,000 pods never sits in memory at once.
    """

    def __init__(self, api_client: k8s.ApiClient, *, timeout: float = 30.0,
                 page_size: int = 500, on_request: RequestHook = _quiet,
                 on_malformed: MalformedHook = _quiet,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.client = api_client
        self.timeout = timeout
        self.page_size = page_size
        self.on_request = on_request
        self.on_malformed = on_malformed
        self.sleep = sleep

    def _call(self, method: str, url_path: str, *, body: Any = None,
              content_type: str = JSON, query: list[tuple[str, str]] | None = None,
              verb: str = "", resource: str = "") -> dict[str, Any]:
        for attempt in range(RETRIES_ON_429 + 1):
            status, payload, retry_after = self._once(method, url_path, body, content_type,
                                                      query, verb or method.lower(), resource)
            if status == 429 and retry_after is not None and attempt < RETRIES_ON_429:
                self.sleep(retry_after)
                continue
            break
        if status >= 400:
            raise ApiError(status, str(payload.get("reason") or "Error"),
                           str(payload.get("message") or ""))
        return payload

    def _once(self, method: str, url_path: str, body: Any, content_type: str,
              query: list[tuple[str, str]] | None, verb: str, resource: str
              ) -> tuple[int, dict[str, Any], float | None]:
        headers = {"Accept": JSON}
        if body is not None:
            headers["Content-Type"] = content_type
        started = time.monotonic()
        try:
            method, url, headers, data, post = self.client.param_serialize(
                method, url_path, query_params=query or [], header_params=headers, body=body,
                auth_settings=AUTH)
            response = self.client.call_api(method, url, headers, data, post,
                                            _request_timeout=self.timeout)
            response.read()  # type: ignore[no-untyped-call]
        except NO_ANSWER as exc:  # no answer at all
            self.on_request(verb, resource, 0, time.monotonic() - started)
            raise ApiError(0, "Timeout", str(exc)) from exc
        self.on_request(verb, resource, response.status, time.monotonic() - started)
        raw = response.data or b"{}"
        try:
            payload: dict[str, Any] = json.loads(raw)
        except (ValueError, RecursionError):  # not JSON, or nested past the parser's limit
            payload = {"message": raw[:1000].decode(errors="replace")}
        if not isinstance(payload, dict):
            payload = {"message": str(payload)[:1000]}
        return response.status, payload, _retry_after(response.headers)

    def get(self, resource: str, namespace: str, name: str) -> dict[str, Any]:
        return self._call("GET", path(resource, namespace, name), verb="get",
                          resource=resource)

    def list(self, resource: str, namespace: str | None = None, selector: str | None = None,
             fields: str | None = None) -> tuple[list[dict[str, Any]], str]:
        listing = self.pages(resource, namespace, selector, fields)
        return [obj for page in listing for obj in page], listing.version

    def pages(self, resource: str, namespace: str | None = None,
              selector: str | None = None, fields: str | None = None) -> Listing:
        """A paged list, read lazily; its `version` is known once it has been read."""
        return Listing(self, resource, namespace, selector, fields)

    def create(self, resource: str, namespace: str, obj: Mapping[str, Any]) -> dict[str, Any]:
        return self._call("POST", path(resource, namespace), body=dict(obj), verb="create",
                          resource=resource)

    def delete(self, resource: str, namespace: str, name: str, *, uid: str = "") -> None:
        body = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if uid:
            body["preconditions"] = {"uid": uid}  # type: ignore[assignment]
        self._call("DELETE", path(resource, namespace, name), body=body, verb="delete",
                   resource=resource)

    def patch(self, resource: str, namespace: str, name: str,
              patch: Mapping[str, Any]) -> dict[str, Any]:
        return self._call("PATCH", path(resource, namespace, name), body=dict(patch),
                          content_type=MERGE, verb="patch", resource=resource)

    def patch_status(self, resource: str, namespace: str, name: str,
                     status: Mapping[str, Any], *,
                     precondition: Precondition | None = None) -> dict[str, Any]:
        url_path = path(resource, namespace, name, "status")
        if precondition is None or not (precondition.uid or precondition.annotations):
            return self._call("PATCH", url_path, body={"status": dict(status)},
                              content_type=MERGE, verb="patch", resource=f"{resource}/status")
        ops: list[dict[str, Any]] = []
        if precondition.uid:
            ops.append({"op": "test", "path": "/metadata/uid", "value": precondition.uid})
        for key, value in precondition.annotations.items():
            ops.append({"op": "test", "path": f"/metadata/annotations/{_pointer(key)}",
                        "value": value})
        ops.append({"op": "add", "path": "/status", "value": dict(status)})
        try:
            return self._call("PATCH", url_path, body=ops, content_type=JSON_PATCH,
                              verb="patch", resource=f"{resource}/status")
        except ApiError as exc:
            if exc.status == 422 and not self._holds(resource, namespace, name, precondition):
                # A failed `test` operation is answered 422 "the server rejected our request
                # due to an error in our request", like a status that is invalid; the
                # object tells which: a precondition that no longer holds is the 409 it means.
                raise ApiError(409, "Conflict", f"a precondition failed ({exc})") from exc
            raise

    def _holds(self, resource: str, namespace: str, name: str,
               precondition: Precondition) -> bool:
        try:
            meta = self.get(resource, namespace, name)["metadata"]
        except ApiError:
            return False  # gone: no precondition holds
        notes = meta.get("annotations") or {}
        return (not precondition.uid or meta.get("uid") == precondition.uid) and all(
            notes.get(k) == v for k, v in precondition.annotations.items())

    def watch(self, resource: str, namespace: str | None, selector: str | None,
              resource_version: str, *, timeout: int = 60
              ) -> Iterator[tuple[str, dict[str, Any]]]:
        """The watch events after `resource_version`: (ADDED|MODIFIED|DELETED, object).
        The history being gone (410, sent as an ERROR event) raises `ApiError(410)`."""
        query = [("watch", "true"), ("resourceVersion", resource_version),
                 ("timeoutSeconds", str(timeout)), ("allowWatchBookmarks", "false")]
        if selector:
            query.append(("labelSelector", selector))
        try:
            method, url, headers, data, post = self.client.param_serialize(
                "GET", path(resource, namespace), query_params=query,
                header_params={"Accept": JSON}, auth_settings=AUTH)
            response = self.client.call_api(method, url, headers, data, post,
                                            _request_timeout=timeout + 10)
        except NO_ANSWER as exc:
            raise ApiError(0, "Timeout", str(exc)) from exc
        if response.status >= 400:
            response.read()  # type: ignore[no-untyped-call]
            raise ApiError(response.status, "Error", (response.data or b"").decode())
        buffer = b""
        try:
            for chunk in response.response.stream(65536):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if not line.strip():
                        continue
                    try:
                        event = json.loads(line)
                    except (ValueError, RecursionError) as exc:
                        self.on_malformed(resource, f"not JSON ({exc}): {line[:200]!r}")
                        continue
                    kind = event.get("type") if isinstance(event, dict) else None
                    obj = event.get("object") if isinstance(event, dict) else None
                    if kind == "ERROR" and isinstance(obj, dict):
                        raise ApiError(int(obj.get("code") or 500),
                                       str(obj.get("reason") or "Error"),
                                       str(obj.get("message") or ""))
                    if kind == "BOOKMARK":
                        continue
                    if kind not in WATCH_TYPES or not isinstance(obj, dict) or not isinstance(
                            obj.get("metadata"), dict):
                        self.on_malformed(resource, f"unexpected watch event: {line[:200]!r}")
                        continue
                    yield str(kind), obj
        except (OSError, urllib3.exceptions.HTTPError) as exc:  # dropped: the caller rewatches
            raise ApiError(0, "Timeout", str(exc)) from exc
        finally:
            response.response.release_conn()


def _retry_after(headers: Any) -> float | None:
    """Seconds from a Retry-After header (delta-seconds form), if any and not too long."""
    try:
        value = float((headers or {}).get("Retry-After", ""))
    except (TypeError, ValueError):
        return None
    return value if 0 <= value <= RETRY_AFTER_CAP else None


class Listing:
    """The pages of one list call, fetched as they are read (`limit` and `continue`). The
    resourceVersion to watch from is the first page's: later pages are of that snapshot."""

    def __init__(self, api: KubeApi, resource: str, namespace: str | None,
                 selector: str | None, fields: str | None = None) -> None:
        self.api = api
        self.resource = resource
        self.namespace = namespace
        self.selector = selector
        self.fields = fields
        self.version = ""

    def __iter__(self) -> Iterator[list[dict[str, Any]]]:
        token = ""
        while True:
            query = [("limit", str(self.api.page_size))]
            if self.selector:
                query.append(("labelSelector", self.selector))
            if self.fields:
                query.append(("fieldSelector", self.fields))
            if token:
                query.append(("continue", token))
            found = self.api._call("GET", path(self.resource, self.namespace), query=query,
                                   verb="list", resource=self.resource)
            meta = found.get("metadata") or {}
            if not token:
                self.version = str(meta.get("resourceVersion") or "")
            yield list(found.get("items") or [])
            token = str(meta.get("continue") or "")
            if not token:
                return

    def objects(self) -> Iterator[dict[str, Any]]:
        for page in self:
            yield from page
