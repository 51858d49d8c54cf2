"""``payplane merchant create`` and ``payplane credentials`` against a real merchants process
(started the way ``payplane up`` starts it, on a private port block and database)."""

import json
import socket
import stat
from pathlib import Path

import pytest
import yaml
from payplane_cli import local
from payplane_cli import main as cli
from payplane_cli.merchants import SECRET_KEYS
from payplane_cli.stack import Stack
from payplane_core.db import drop_database

pytestmark = pytest.mark.timeout(90)


def free_offset(base_port: int = 8102) -> int:
    """A port offset nobody listens on (other stacks run on this machine at the same time)."""
    for offset in range(4000, 6000, 37):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", base_port + offset)) != 0:
                return offset
    raise RuntimeError("no free port for the CLI test stack")


@pytest.fixture(scope="module")
async def stack(tmp_path_factory):
    state = tmp_path_factory.mktemp("cli-stack")
    stack = Stack(
        name="cli-test",
        state_dir=state,
        secrets_dir=state,
        port_offset=free_offset(),
        db_prefix="payplane_unit_cli_",
        redis_url="redis://127.0.0.1:6379/1",
    )
    await drop_database(stack.database_url("merchants"))
    try:
        # local.up runs its own event loop (asyncio.run): keep it off ours
        import asyncio

        await asyncio.to_thread(local.up, stack, ["merchants"])
        yield stack
    finally:
        stack.stop("merchants")


@pytest.fixture
def run(stack, monkeypatch, capsys):
    monkeypatch.setattr(cli, "_stack", lambda args: stack)

    def run(*argv: str) -> tuple[int, dict | None, str]:
        code = cli.main(list(argv))
        out, err = capsys.readouterr()
        return code, (json.loads(out) if code == 0 else None), err

    return run


def test_create_prints_exactly_the_secret_keys_and_keeps_a_private_copy(run, stack):
    code, printed, _ = run(
        "merchant",
        "create",
        "cli-shop",
        "--webhook-url",
        "http://127.0.0.1:9/hook",
        "--plan",
        "growth",
        "--display-name",
        "CLI Shop",
        "--rps",
        "5",
        "--burst",
        "10",
        "--quota",
        "100",
        "--allowed-providers",
        "sim-a,sim-b",
    )
    assert code == 0
    assert tuple(printed) == SECRET_KEYS
    assert printed["api_key"].startswith("pk_") and printed["read_key"].startswith("rk_")
    assert printed["webhook_secret"].startswith("whsec_")
    path = stack.state_dir / "credentials" / "cli-shop.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700

    code, again, _ = run("credentials", "cli-shop")
    assert code == 0 and again == printed


def test_existing_name_and_bad_input_fail_cleanly(run):
    assert run("merchant", "create", "cli-twice")[0] == 0
    code, _, err = run("merchant", "create", "cli-twice")
    assert code == 1 and "already exists" in err
    code, _, err = run("merchant", "create", "Not_A_Slug")
    assert code == 1 and "422" in err


def test_credentials_rotate_and_unknown(run, stack):
    _, first, _ = run("merchant", "create", "cli-rotate")
    code, rotated, _ = run("credentials", "cli-rotate", "--rotate", "--grace-seconds", "0")
    assert code == 0 and rotated["merchant_id"] == first["merchant_id"]
    assert rotated["api_key"] != first["api_key"]
    assert rotated["webhook_secret"] != first["webhook_secret"]  # rotated with the keys
    assert run("credentials", "cli-rotate")[1] == rotated
    code, _, err = run("credentials", "cli-nobody")
    assert code == 1 and "no merchant named cli-nobody" in err


def test_lost_local_copy_is_reported(run, stack):
    run("merchant", "create", "cli-lost")
    (stack.state_dir / "credentials" / "cli-lost.json").unlink()
    code, _, err = run("credentials", "cli-lost")
    assert code == 1 and "--rotate" in err


def test_stack_not_running_is_a_clear_error(run, stack):
    stack.stop("merchants")
    try:
        code, _, err = run("credentials", "cli-shop")
        assert code == 1 and "not reachable" in err
    finally:
        local.up(stack, ["merchants"])


EXAMPLES = Path(__file__).resolve().parents[2] / "k8s" / "examples"


def test_apply_the_examples_then_rotate_get_and_delete(run, stack, tmp_path):
    """``payplane apply -f`` runs the operator's reconciler: the same files kubectl applies."""
    for name in ("plans.yaml", "merchant.yaml"):
        (tmp_path / name).write_text((EXAMPLES / name).read_text())
    code, done, err = run("apply", "-f", str(tmp_path))
    assert code == 0, err
    assert done[:3] == ["plan/starter stored", "plan/standard stored", "plan/enterprise stored"]
    assert done[3].startswith("merchant/acme-shop issued (mer_")
    code, creds, _ = run("credentials", "acme-shop")
    assert code == 0 and tuple(creds) == SECRET_KEYS
    assert run("apply", "-f", str(tmp_path))[0] == 0  # again: the same merchant, same keys
    assert run("credentials", "acme-shop")[1] == creds

    merchant = yaml.safe_load((EXAMPLES / "merchant.yaml").read_text())
    merchant["metadata"]["annotations"] = {"payplane.io/rotate-credentials": "1"}
    (tmp_path / "merchant.yaml").write_text(yaml.safe_dump(merchant))
    assert run("apply", "-f", str(tmp_path / "merchant.yaml"))[0] == 0
    rotated = run("credentials", "acme-shop")[1]
    assert rotated["merchant_id"] == creds["merchant_id"] and rotated["api_key"] != creds["api_key"]

    code, listed, _ = run("get", "merchants")
    assert [m["name"] for m in listed] == ["acme-shop"]
    assert listed[0]["plan"] == "standard" and listed[0]["status"]["merchantId"]
    assert {p["name"] for p in run("get", "plans")[1]} == {"starter", "standard", "enterprise"}

    assert run("delete", "-f", str(tmp_path / "merchant.yaml"))[0] == 0
    code, _, err = run("credentials", "acme-shop")
    assert code == 1 and "no merchant named acme-shop" in err


def test_apply_with_an_unknown_plan_says_so(run, tmp_path):
    merchant = yaml.safe_load((EXAMPLES / "merchant.yaml").read_text())
    merchant["metadata"]["name"], merchant["spec"]["plan"] = "cli-orphan", "no-such-plan"
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(merchant))
    code, _, err = run("apply", "-f", str(tmp_path / "m.yaml"))
    assert code == 1 and "UnknownPlan" in err and "no-such-plan" in err
