"""``payplane apply -f FILE|DIR``, ``payplane get merchants|providers|plans``, ``payplane delete
-f FILE``: the operator's reconciler (payplane_operator.reconcile) run from the command line
against the local stack, with no cluster.

What a cluster would keep in etcd lives in ``<secrets_dir>/resources/<kind>/<name>.json``
(owner-only): the applied documents, each Merchant's uid (its external reference, made once) and
the rotation value acted upon. Credentials go where ``payplane credentials NAME`` reads them (a
0600 file); Secrets in the applied files are kept there too, for Providers' secret refs.
"""

import argparse
import asyncio
import base64
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml
from payplane_core.clients import MerchantsClient, ProvidersClient, ServiceError
from payplane_operator.reconcile import (
    Permanent,
    Platform,
    reconcile_merchant,
    reconcile_provider,
    remove_merchant,
)

from payplane_cli.clients import client_for
from payplane_cli.merchants import credentials_path, save_credentials
from payplane_cli.stack import Stack

ROTATE = "payplane.io/rotate-credentials"
KINDS = {"Plan": "plans", "Merchant": "merchants", "Provider": "providers", "Secret": "secrets"}


class ApplyError(RuntimeError):
    """Printed by main; exit code 1."""


def documents(target: Path) -> Iterator[dict[str, Any]]:
    files = sorted(target.glob("*.y*ml")) if target.is_dir() else [target]
    for path in files:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                if doc.get("kind") not in KINDS:
                    raise ApplyError(f"{path}: kind {doc.get('kind')!r} is not one of {set(KINDS)}")
                yield doc


class Store:
    """The local stand-in for the API server's storage (owner-only JSON files)."""

    def __init__(self, stack: Stack) -> None:
        self.root = stack.secrets_dir / "resources"

    def path(self, kind: str, name: str) -> Path:
        return self.root / KINDS[kind] / f"{name}.json"

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        path = self.path(kind, name)
        return json.loads(path.read_text()) if path.exists() else None

    def put(self, doc: dict[str, Any]) -> None:
        path = self.path(doc["kind"], doc["metadata"]["name"])
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc))
        tmp.chmod(0o600)
        tmp.replace(path)

    def drop(self, kind: str, name: str) -> None:
        self.path(kind, name).unlink(missing_ok=True)

    def all(self, kind: str) -> list[dict[str, Any]]:
        folder = self.root / KINDS[kind]
        return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


class FileSink:
    """Credentials as a 0600 file, exactly where ``payplane credentials NAME`` reads them."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    async def read(self, name: str) -> dict[str, str] | None:
        path = credentials_path(self.stack, name)
        return json.loads(path.read_text()) if path.exists() else None

    async def write(self, name: str, data: dict[str, str]) -> None:
        save_credentials(self.stack, name, data)


class StoredSecrets:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def value(self, ref: dict[str, str]) -> str:
        secret = self.store.get("Secret", ref["name"]) or {}
        data = secret.get("stringData", {}) | {
            k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()
        }
        if ref["key"] not in data:
            raise Permanent("SecretNotFound", f"Secret {ref['name']} has no key {ref['key']}.")
        return data[ref["key"]]


async def _apply_one(platform: Platform, stack: Stack, store: Store, doc: dict) -> str:
    kind, name = doc["kind"], doc["metadata"]["name"]
    if kind in ("Plan", "Secret"):
        store.put(doc)
        return f"{kind.lower()}/{name} stored"
    if kind == "Provider":
        await reconcile_provider(
            platform, name=name, spec=doc["spec"], secrets=StoredSecrets(store)
        )
        store.put(doc)
        return f"provider/{name} registered"
    known = store.get("Merchant", name) or {}
    uid = known.get("metadata", {}).get("uid") or str(uuid.uuid4())
    requested = doc["metadata"].get("annotations", {}).get(ROTATE)
    plan = (store.get("Plan", doc["spec"]["plan"]) or {}).get("spec")
    result = await reconcile_merchant(
        platform,
        FileSink(stack),
        name=name,
        uid=uid,
        spec=doc["spec"],
        plan=plan,
        rotate=bool(requested) and requested != known.get("status", {}).get("rotation"),
    )
    doc["metadata"]["uid"] = uid
    doc["status"] = {"merchantId": result.merchant_id, "plan": result.plan, "rotation": requested}
    store.put(doc)
    return f"merchant/{name} {result.credentials or 'unchanged'} ({result.merchant_id})"


async def _with_platform(stack: Stack, work: Callable[[Platform], Any]) -> Any:
    platform = Platform(
        merchants=client_for(stack, MerchantsClient), providers=client_for(stack, ProvidersClient)
    )
    try:
        return await work(platform)
    except Permanent as exc:
        raise ApplyError(f"{exc.reason}: {exc.message}") from None
    except ServiceError as exc:
        raise ApplyError(str(exc)) from None
    finally:
        await platform.merchants.aclose()
        await platform.providers.aclose()


def apply(stack: Stack, target: Path) -> list[str]:
    store = Store(stack)
    # Plans and Secrets first: Merchants and Providers refer to them.
    docs = sorted(documents(target), key=lambda d: d["kind"] not in ("Plan", "Secret"))

    async def run(platform: Platform) -> list[str]:
        return [await _apply_one(platform, stack, store, doc) for doc in docs]

    return asyncio.run(_with_platform(stack, run))


def delete(stack: Stack, target: Path) -> list[str]:
    store = Store(stack)

    async def run(platform: Platform) -> list[str]:
        done = []
        for doc in documents(target):
            kind, name = doc["kind"], doc["metadata"]["name"]
            known = store.get(kind, name)
            if kind == "Merchant" and known:
                await remove_merchant(platform, name=name, uid=known["metadata"]["uid"])
                credentials_path(stack, name).unlink(missing_ok=True)
            elif kind == "Provider" and known:
                await platform.providers.disable(name)
            store.drop(kind, name)
            done.append(f"{kind.lower()}/{name} deleted")
        return done

    return asyncio.run(_with_platform(stack, run))


def rows(stack: Stack, what: str) -> list[dict[str, Any]]:
    kind = {v: k for k, v in KINDS.items()}[what]
    out = []
    for doc in Store(stack).all(kind):
        row = {"name": doc["metadata"]["name"]} | {
            k: v for k, v in doc["spec"].items() if not k.endswith("SecretRef")
        }
        out.append(row | ({"status": doc["status"]} if "status" in doc else {}))
    return out


def register(
    sub: argparse._SubParsersAction, stack_of: Callable[[argparse.Namespace], Stack]
) -> None:
    for verb, action in (("apply", apply), ("delete", delete)):
        parser = sub.add_parser(verb, help=f"{verb} custom resources (YAML) on the local stack")
        parser.add_argument("-f", "--filename", type=Path, required=True, help="a file or folder")

        def cmd(args: argparse.Namespace, action=action) -> int:
            print(json.dumps(action(stack_of(args), args.filename), indent=2))  # what it did
            return 0

        parser.set_defaults(func=cmd)
    get = sub.add_parser("get", help="what payplane apply stored (JSON)")
    get.add_argument("what", choices=["merchants", "providers", "plans"])
    get.set_defaults(func=lambda a: print(json.dumps(rows(stack_of(a), a.what), indent=2)) or 0)
