"""A Kubernetes API server for the operator's tests: KMock's emulator, completed where kopf
needs it (uid, resourceVersion, creationTimestamp, generation), and a small REST client.

kubectl cannot talk to it (no OpenAPI), so tests use plain HTTP, as kopf itself does.
"""

import asyncio
import itertools
import uuid
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import attrs
import httpx
import kmock

GROUP = "payplane.io/v1alpha1"
RESOURCES: dict[str, dict[str, Any]] = {
    f"{GROUP}/merchants": {"kind": "Merchant", "namespaced": True},
    f"{GROUP}/providers": {"kind": "Provider", "namespaced": True},
    f"{GROUP}/plans": {"kind": "Plan", "namespaced": False},
    "kopf.dev/v1/clusterkopfpeerings": {"kind": "ClusterKopfPeering", "namespaced": False},
    "v1/secrets": {"kind": "Secret", "namespaced": True},
    "v1/events": {"kind": "Event", "namespaced": True},
    "v1/configmaps": {"kind": "ConfigMap", "namespaced": True},
    "v1/namespaces": {"kind": "Namespace", "namespaced": False},
}
_versions = itertools.count(1)
VERBS = {"list", "watch", "get", "create", "patch", "update", "delete"}


@attrs.frozen
class KubernetesConflict(kmock.KubernetesError):
    status: int = 422
    reason: str = "Invalid"
    message: str = "the object has been modified; apply your changes to the latest version"


class IndexedDispatch(kmock.RawHandler):
    """KMock's dispatch, without its scan of the whole request history on every request.

    KMock finds a request's reaction with ``request in reaction_source``, which re-filters every
    request recorded so far: each request costs O(requests served), so a 100-Merchant run spent
    most of its CPU there (the emulator shares the event loop with the operator under test).
    For a chain of plain filters down to this server, being in the view is exactly matching each
    filter's criteria, checked here on the one request; other views keep KMock's ``in``. Same
    reactions in the same priority order (as in ``kmock.RawHandler._handle``), same history.
    """

    def _sees(self, view: kmock.View, request: kmock.Request) -> bool:
        while type(view) in (kmock.Filter, kmock.Priority):
            if type(view) is kmock.Filter and not view.criteria(request):
                return False
            view = view._source
        return view is self or request in view

    async def _handle(self, request):
        # Longer priorities padded with zeroes, highest first (KMock's own ordering).
        width = max((len(p.priorities) for p in self._payloads), default=0)
        order = sorted(
            self._payloads,
            key=lambda p: tuple(-x for x in p.priorities) + (0,) * (width - len(p.priorities)),
        )
        for payload in order:
            if not payload._disabled.is_set() and self._sees(payload._source, request):
                try:
                    return await payload(request)
                except kmock.ReactionMismatchError:  # mismatch or depletion
                    payload._disabled.set()
                except NotImplementedError:  # matched, nothing to respond with
                    pass
        raise NotImplementedError("no reaction matches the request")


class Emulator(kmock.KubernetesEmulator, IndexedDispatch):
    """Fills what a real API server fills; ``hold_secret_creates`` parks Secret creations until
    ``release`` (then fails them), to stop an operator between its two writes."""

    hold_secret_creates = False
    released: asyncio.Event | None = None
    held = 0

    async def _handle(self, request):
        if request.resource is not None and request.action == kmock.action.CREATE:
            if isinstance(request.data, dict):
                self._created(request)
                if request.resource.plural == "secrets" and type(self).hold_secret_creates:
                    return await self._hold()
        elif request.resource is not None and request.action == kmock.action.UPDATE:
            if request.name and isinstance(request.data, dict):
                self._merge_patched(request)
            elif request.name and isinstance(request.data, list):
                self._json_patched(request)
        return await super()._handle(request)

    def _current(self, request) -> dict:
        key = (request.resource, request.namespace, request.name)
        return self.objects[key] if key in self.objects else {}

    def _created(self, request) -> None:
        meta = request.data.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        meta["generation"] = 1
        meta["resourceVersion"] = str(next(_versions))
        if request.namespace:
            meta.setdefault("namespace", request.namespace)

    def _merge_patched(self, request) -> None:
        meta = request.data.get("metadata") or {}
        request.data["metadata"] = meta
        meta["resourceVersion"] = str(next(_versions))
        if "spec" in request.data:
            generation = self._current(request).get("metadata", {}).get("generation", 1)
            meta["generation"] = int(generation) + 1

    def _json_patched(self, request) -> None:
        """Optimistic concurrency as the API server does it: a failed ``test`` is 422."""
        current = self._current(request).get("metadata", {})
        for op in request.data:
            if op.get("op") == "test" and op.get("path") == "/metadata/resourceVersion":
                if op.get("value") != current.get("resourceVersion"):
                    raise KubernetesConflict()
        request.data.append(
            {"op": "replace", "path": "/metadata/resourceVersion", "value": str(next(_versions))}
        )
        if any(op.get("path", "").startswith("/spec") for op in request.data):
            generation = int(current.get("generation", 1)) + 1
            request.data.append(
                {"op": "replace", "path": "/metadata/generation", "value": generation}
            )

    async def _hold(self):
        import aiohttp.web

        cls = type(self)
        cls.held += 1
        assert cls.released is not None
        await cls.released.wait()
        return aiohttp.web.json_response({"kind": "Status", "code": 503}, status=503)


@asynccontextmanager
async def emulator():
    Emulator.hold_secret_creates = False
    Emulator.released = asyncio.Event()
    Emulator.held = 0
    async with Emulator() as emu, kmock.Server(emu) as server:
        for name, info in RESOURCES.items():
            emu.resources[name] = kmock.ResourceInfo(
                kind=info["kind"],
                namespaced=info["namespaced"],
                verbs={"list", "watch", "get", "create", "patch", "update", "delete"},
            )
        yield emu, str(server.url).rstrip("/")


def watching(emu: Emulator, *plurals: str) -> bool:
    """Whether a watch-stream is open on each of these resources (create objects after)."""
    seen = {r.url.path.rsplit("/", 1)[-1] for r in emu if r.params.get("watch") == "true"}
    return set(plurals) <= seen


def path(resource: str, name: str | None = None, namespace: str | None = None) -> str:
    """``resource``: as in RESOURCES (``payplane.io/v1alpha1/merchants``, ``v1/secrets``)."""
    group_version, plural = resource.rsplit("/", 1)
    base = f"/api/{group_version}" if "/" not in group_version else f"/apis/{group_version}"
    if namespace:
        base += f"/namespaces/{namespace}"
    return f"{base}/{plural}" + (f"/{name}" if name else "")


class KubeClient:
    """Create, read, patch, delete, list: what ``kubectl`` would do in these tests."""

    def __init__(self, url: str) -> None:
        self.http = httpx.AsyncClient(base_url=url, timeout=10)

    async def create(self, resource: str, body: dict, namespace: str | None = None) -> dict:
        response = await self.http.post(path(resource, namespace=namespace), json=body)
        response.raise_for_status()
        return response.json()

    async def get(self, resource: str, name: str, namespace: str | None = None) -> dict | None:
        response = await self.http.get(path(resource, name, namespace))
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.json()

    async def patch(self, resource: str, name: str, body: dict, namespace: str | None = None):
        response = await self.http.patch(
            path(resource, name, namespace),
            json=body,
            headers={"Content-Type": "application/merge-patch+json"},
        )
        response.raise_for_status()
        return response.json()

    async def delete(self, resource: str, name: str, namespace: str | None = None) -> None:
        response = await self.http.delete(path(resource, name, namespace))
        if response.status_code != 404:
            response.raise_for_status()

    async def list(self, resource: str, namespace: str | None = None) -> list[dict]:
        response = await self.http.get(path(resource, namespace=namespace))
        response.raise_for_status()
        return response.json()["items"]

    async def aclose(self) -> None:
        await self.http.aclose()


async def wait_for(check, *, timeout: float = 15, interval: float = 0.1):  # noqa: ASYNC109
    """Poll ``check`` (sync or async) until it returns something truthy; that value."""
    async with asyncio.timeout(timeout):
        while True:
            value = check()
            if asyncio.iscoroutine(value):
                value = await value
            if value:
                return value
            await asyncio.sleep(interval)
