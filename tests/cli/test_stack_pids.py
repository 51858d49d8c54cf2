"""``payplane down`` signals only processes it started: a pid file whose pid now belongs to
another process (reused after a crash or reboot) is forgotten, never killed."""

import json
import subprocess

from payplane_cli.pids import alive, process_start_time
from payplane_cli.stack import Process, Stack


def sleeper_stack(tmp_path) -> tuple[Stack, Process]:
    stack = Stack(name="pidtest", state_dir=tmp_path / "state", secrets_dir=tmp_path / "secrets")
    return stack, Process(name="sleeper", argv=lambda s: ["sleep", "60"], health=None)


def test_our_process_is_stopped(tmp_path):
    stack, sleeper = sleeper_stack(tmp_path)
    pid = stack.start(sleeper)
    assert stack.pid_of("sleeper") == pid
    recorded = json.loads((stack.run_dir / "sleeper.pid").read_text())
    assert recorded == {"pid": pid, "start_time": process_start_time(pid)}
    assert stack.stop("sleeper") is True
    assert not alive(pid) and stack.pid_of("sleeper") is None


def test_a_reused_pid_is_not_ours_and_is_left_alone(tmp_path):
    stack, _ = sleeper_stack(tmp_path)
    stack.run_dir.mkdir(parents=True)
    stranger = subprocess.Popen(["sleep", "60"], start_new_session=True)  # noqa: S607
    try:
        path = stack.run_dir / "sleeper.pid"
        for content in (
            json.dumps({"pid": stranger.pid, "start_time": "1"}),  # same pid, another process
            str(stranger.pid),  # an old bare-pid file: cannot be proven ours
        ):
            path.write_text(content)
            assert stack.stop("sleeper") is False
            assert stranger.poll() is None, "a process that is not ours was signalled"
            assert not path.exists()  # the stale file is forgotten
    finally:
        stranger.kill()
        stranger.wait()
