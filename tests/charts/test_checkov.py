"""checkov over the rendered manifests (default, kind and prod values): no finding but the
skip list in tools/checkov/skips.yaml, each with its reason, and no skip that no longer fires.

checkov's pinned dependencies conflict with the workspace's kubernetes client, so it runs from
its own environment, .local/tools/checkov, installed on first use from
tools/checkov/requirements.txt (every package pinned with hashes)."""

import json
import os
import subprocess
import sys

import pytest
import yaml

from tests.charts.conftest import REPO, VALUES_FILES, load_values

TOOLS = REPO / "tools" / "checkov"
VENV = REPO / ".local" / "tools" / "checkov"
UV = REPO / ".local" / "tools" / "bin" / "uv"
SKIPS = yaml.safe_load((TOOLS / "skips.yaml").read_text())


def checkov() -> str:
    binary = VENV / "bin" / "checkov"
    stamp = VENV / "requirements.txt"
    wanted = (TOOLS / "requirements.txt").read_text()
    if not binary.exists() or not stamp.exists() or stamp.read_text() != wanted:
        venv = [str(UV), "venv", "-q", "--clear", "--python", sys.executable, str(VENV)]
        subprocess.run(venv, check=True)  # noqa: S603 - our own argv
        subprocess.run(  # noqa: S603 - the pinned, hashed requirements
            [
                str(UV),
                "pip",
                "install",
                "-q",
                "--require-hashes",
                "-r",
                str(TOOLS / "requirements.txt"),
            ],
            env={**os.environ, "VIRTUAL_ENV": str(VENV)},
            check=True,
            timeout=600,
        )
        stamp.write_text(wanted)
    return str(binary)


@pytest.fixture(scope="module")
def findings(renderer, tmp_path_factory) -> dict[str, set[str]]:
    """check id → resources failing it, with no skips applied."""
    folder = tmp_path_factory.mktemp("rendered")
    for name, values in VALUES_FILES.items():
        with (folder / f"{name}.yaml").open("w") as out:
            yaml.safe_dump_all(renderer.docs(values=load_values(values)), out)
    result = subprocess.run(  # noqa: S603 - our own argv
        [
            checkov(),
            "-d",
            str(folder),
            "--framework",
            "kubernetes",
            "-o",
            "json",
            "--quiet",
            "--compact",
            "--skip-download",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={"PATH": "/usr/bin:/bin", "BC_SKIP_MAPPING": "TRUE", "HOME": str(folder)},
    )
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    assert reports[0]["summary"]["resource_count"] > 100, result.stderr[-2000:]
    failed: dict[str, set[str]] = {}
    for part in reports:
        for check in part["results"]["failed_checks"]:
            failed.setdefault(check["check_id"], set()).add(check["resource"])
    return failed


def test_every_skip_has_a_reason():
    for skip in SKIPS:
        assert skip["id"].startswith("CKV_K8S_") and len(skip["reason"]) > 40, skip


def test_no_finding_outside_the_skip_list(findings):
    unexpected = {check: sorted(found) for check, found in findings.items()}
    for skip in SKIPS:
        unexpected.pop(skip["id"], None)
    assert not unexpected


def test_no_stale_skip(findings):
    assert {skip["id"] for skip in SKIPS} <= set(findings)
