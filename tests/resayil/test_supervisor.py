"""`resayil run` as an operator runs it: the whole system up, and all of it down again
when the supervisor gets SIGTERM (`docker stop`, systemd, `kill`)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.services import RedisServer, free_port

UP_TIMEOUT_S = 90
DOWN_TIMEOUT_S = 45


def children_of(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()]


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_sigterm_stops_every_process_run_started(tmp_path: Path, module_redis: RedisServer) -> None:
    api_port, sim_port = free_port(), free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path}/resayil.db",
        "REDIS_URL": module_redis.url,
        "OLLAMA_URL": f"http://127.0.0.1:{sim_port}",  # nothing there: the simulator starts
        "MYFATOORAH_TOKEN": "not-used-here",  # no MyFatoorah double
    }
    with (tmp_path / "run.log").open("wb") as log:
        supervisor = subprocess.Popen(
            [sys.executable, "-m", "resayil", "run", "--port", str(api_port)],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    started: list[int] = []
    try:
        deadline = time.monotonic() + UP_TIMEOUT_S
        while not answers(f"http://127.0.0.1:{api_port}/healthz"):
            assert supervisor.poll() is None, (tmp_path / "run.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "run.log").read_text()
            time.sleep(0.5)
        started += children_of(supervisor.pid)
        # The simulator, the dispatcher, the worker, the scheduler and the api.
        assert len(started) == 5 and answers(f"http://127.0.0.1:{sim_port}/api/version")

        supervisor.send_signal(signal.SIGTERM)
        supervisor.wait(timeout=DOWN_TIMEOUT_S)
        deadline = time.monotonic() + 10
        while any(running(pid) for pid in started):
            assert time.monotonic() < deadline, [pid for pid in started if running(pid)]
            time.sleep(0.2)
        assert not answers(f"http://127.0.0.1:{api_port}/healthz")
    finally:
        if supervisor.poll() is None:
            started += children_of(supervisor.pid)
            supervisor.kill()
        for pid in started:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
