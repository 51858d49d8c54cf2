"""Pid files that name one process for good: the pid with its start time, so a pid reused by
another process after a crash or reboot is never mistaken for ours (and never signalled)."""

import json
import os
from pathlib import Path


def process_start_time(pid: int) -> str | None:
    """When ``pid`` started (clock ticks since boot, /proc/<pid>/stat field 22), or None if no
    such process: with the pid, it names one process for good."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    return stat.rpartition(")")[2].split()[19]


def write_pid_file(path: Path, pid: int) -> None:
    started = process_start_time(pid)
    path.write_text(json.dumps({"pid": pid, "start_time": started}))


def read_pid_file(path: Path) -> tuple[int | None, str | None]:
    """(pid, start time); (None, None) for an unreadable or older (bare pid) file."""
    try:
        data = json.loads(path.read_text())
        return int(data["pid"]), data["start_time"]
    except (OSError, ValueError, TypeError, KeyError):
        return None, None


def alive(pid: int) -> bool:
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)  # our own child (tests): reap it
        if reaped == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
