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
from collections.abc import Iterator, Mapping
from typing import Any

from kubernetes import client as k8s

from driver.execute import ApiError, Precondition
from driver.kinds import KINDS

JSON = "application/json"
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


class KubeApi:
    """One install's connection to the Kubernetes API."""

    def __init__(self, api_client: k8s.ApiClient, *, timeout: float = 30.0) -> None:
        self.client = api_client
        self.timeout = timeout

    def _call(self, method: str, url_path: str, *, body: Any = None,
              content_type: str = JSON, query: list[tuple[str, str]] | None = None
              ) -> dict[str, Any]:
        headers = {"Accept": JSON}
        if body is not None:
            headers["Content-Type"] = content_type
        try:
            method, url, headers, data, post = self.client.param_serialize(
                method, url_path, query_params=query or [], header_params=headers, body=body)
            response = self.client.call_api(method, url, headers, data, post,
                                            _request_timeout=self.timeout)
            response.read()  # type: ignore[no-untyped-call]
        except (OSError, k8s.exceptions.ApiException) as exc:  # no answer at all
            raise ApiError(0, "Timeout", str(exc)) from exc
        raw = response.data or b"{}"
        try:
            payload: dict[str, Any] = json.loads(raw)
        except ValueError:
            payload = {"message": raw.decode(errors="replace")}
        if response.status >= 400:
            raise ApiError(response.status, str(payload.get("reason") or "Error"),
                           str(payload.get("message") or ""))
        return payload

    def get(self, resource: str, namespace: str, name: str) -> dict[str, Any]:
        return self._call("GET", path(resource, namespace, name))

    def list(self, resource: str, namespace: str | None = None,
             selector: str | None = None) -> tuple[list[dict[str, Any]], str]:
        query = [("labelSelector", selector)] if selector else []
        found = self._call("GET", path(resource, namespace), query=query)
        return list(found.get("items") or []), str(
            (found.get("metadata") or {}).get("resourceVersion") or "")

    def create(self, resource: str, namespace: str, obj: Mapping[str, Any]) -> dict[str, Any]:
        return self._call("POST", path(resource, namespace), body=dict(obj))

    def delete(self, resource: str, namespace: str, name: str, *, uid: str = "") -> None:
        body = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if uid:
            body["preconditions"] = {"uid": uid}  # type: ignore[assignment]
        self._call("DELETE", path(resource, namespace, name), body=body)

    def patch(self, resource: str, namespace: str, name: str,
              patch: Mapping[str, Any]) -> dict[str, Any]:
        return self._call("PATCH", path(resource, namespace, name), body=dict(patch),
                          content_type=MERGE)

    def patch_status(self, resource: str, namespace: str, name: str,
                     status: Mapping[str, Any], *,
                     precondition: Precondition | None = None) -> dict[str, Any]:
        url_path = path(resource, namespace, name, "status")
        if precondition is None or not (precondition.uid or precondition.annotations):
            return self._call("PATCH", url_path, body={"status": dict(status)},
                              content_type=MERGE)
        ops: list[dict[str, Any]] = []
        if precondition.uid:
            ops.append({"op": "test", "path": "/metadata/uid", "value": precondition.uid})
        for key, value in precondition.annotations.items():
            ops.append({"op": "test", "path": f"/metadata/annotations/{_pointer(key)}",
                        "value": value})
        ops.append({"op": "add", "path": "/status", "value": dict(status)})
        return self._call("PATCH", url_path, body=ops, content_type=JSON_PATCH)

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
                header_params={"Accept": JSON})
            response = self.client.call_api(method, url, headers, data, post,
                                            _request_timeout=timeout + 10)
        except (OSError, k8s.exceptions.ApiException) as exc:
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
                    event = json.loads(line)
                    if event.get("type") == "ERROR":
                        status = event.get("object") or {}
                        raise ApiError(int(status.get("code") or 500),
                                       str(status.get("reason") or "Error"),
                                       str(status.get("message") or ""))
                    yield str(event["type"]), event["object"]
        except OSError as exc:  # the connection dropped: the caller watches again
            raise ApiError(0, "Timeout", str(exc)) from exc
        finally:
            response.response.release_conn()
