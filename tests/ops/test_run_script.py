"""`make run`'s script: whatever stops it, nothing it started is left running."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def alive(pids: list[int]) -> list[int]:
    living = []
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        if state != "Z":
            living.append(pid)
    return living


def ignores_sigterm(pid: int) -> bool:
    """Whether the process ignores SIGTERM now (its SigIgn mask), as the script does once
    it has begun to stop."""
    status = Path(f"/proc/{pid}/status").read_text()
    ignored = int(re.search(r"^SigIgn:\s*([0-9a-f]+)$", status, flags=re.M)[1], 16)
    return bool(ignored & (1 << (signal.SIGTERM - 1)))


def test_a_second_signal_while_stopping_does_not_leave_the_servers_running(tmp_path):
    # Stand-ins for the servers, deaf to SIGINT as a server started in the background by a
    # script is, so the script has to wait and then send SIGTERM.
    started = tmp_path / "started"
    fake = tmp_path / "python"
    fake.write_text(f"#!/bin/bash\ntrap '' INT\necho $$ >> {started}\nexec sleep 300\n")
    fake.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "DASHSCOPE_API_KEY"} | {
        "PY": str(fake),
        "STUDIO_RUN_PORT": str(free_port()),
        "STUDIO_RUN_EMULATOR_PORT": str(free_port()),
    }
    script = subprocess.Popen(
        ["bash", "scripts/run.sh"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (
            not started.exists() or len(started.read_text().split()) < 3
        ):
            time.sleep(0.1)
        servers = [int(pid) for pid in started.read_text().split()]
        assert len(servers) == 3  # the emulator, the web server and the worker

        # Stopped as make is stopped: SIGTERM to the group, then make passes one on.
        os.killpg(script.pid, signal.SIGTERM)
        # Stopping begins by ignoring further signals: the next one comes while it stops.
        wait_for(lambda: ignores_sigterm(script.pid), 10, interval=0.05)
        script.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and alive(servers):
            time.sleep(0.2)
        assert alive(servers) == []
    finally:
        for pid in alive(servers if "servers" in locals() else []):
            os.kill(pid, signal.SIGKILL)
        script.kill()
        script.wait()


def test_a_port_already_taken_stops_it_before_anything_starts(tmp_path):
    started = tmp_path / "started"
    fake = tmp_path / "python"
    fake.write_text(f"#!/bin/bash\necho $$ >> {started}\nexec sleep 300\n")
    fake.chmod(0o755)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if k != "DASHSCOPE_API_KEY"} | {
            "PY": str(fake),
            "STUDIO_RUN_PORT": str(free_port()),
            "STUDIO_RUN_EMULATOR_PORT": str(port),
        }
        run = subprocess.run(
            ["bash", "scripts/run.sh"], cwd=ROOT, env=env, capture_output=True, text=True
        )
    assert run.returncode == 1
    assert f"Port {port} on 127.0.0.1 is taken by another program" in run.stderr
    assert not started.exists()  # nothing was started


def test_a_port_that_is_no_port_number_stops_it_before_anything_starts(tmp_path):
    started = tmp_path / "started"
    fake = tmp_path / "python"
    fake.write_text(f"#!/bin/bash\necho $$ >> {started}\nexec sleep 300\n")
    fake.chmod(0o755)
    for wrong in ("99999", "0", "abc"):
        env = {k: v for k, v in os.environ.items() if k != "DASHSCOPE_API_KEY"} | {
            "PY": str(fake),
            "STUDIO_RUN_PORT": str(free_port()),
            "STUDIO_RUN_EMULATOR_PORT": wrong,
        }
        run = subprocess.run(
            ["bash", "scripts/run.sh"], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert run.returncode == 1
        assert f"Port '{wrong}' is not a port number (1-65535)" in run.stderr
    assert not started.exists()
