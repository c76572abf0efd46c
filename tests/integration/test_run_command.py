"""`lianka run` (what `make run` calls) serves the app with worker, relay and scheduler; a child that
dies is restarted (what it started goes with it); Ctrl-C stops all."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, log.read_text()[-3000:]
        time.sleep(0.3)
    raise AssertionError(f"not ready on :{port}\n{log.read_text()[-3000:]}")


def _cmdline(p: psutil.Process) -> str:
    try:
        return " ".join(p.cmdline())
    except psutil.Error:  # gone, or a zombie not reaped yet
        return ""


def _child(proc: subprocess.Popen[bytes], command: str) -> psutil.Process:
    """The direct child of `lianka run` running ``lianka.cli <command>``."""
    [found] = [c for c in psutil.Process(proc.pid).children() if f"lianka.cli {command}" in _cmdline(c)]
    return found


def _wait_for_new(proc: subprocess.Popen[bytes], command: str, old: int, log: Path) -> psutil.Process:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            child = _child(proc, command)
            if child.pid != old:
                return child
        except ValueError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{command} was not restarted\n{log.read_text()[-3000:]}")


def test_run_restarts_a_dead_child_and_ctrl_c_stops_everything(project_root: Path, tmp_path: Path) -> None:
    port, log = _free_port(), tmp_path / "run.log"
    env = {**os.environ, "LIANKA_PORT": str(port)}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lianka.cli", "run"], cwd=project_root, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        _wait_ready(port, proc, log)
        children = psutil.Process(proc.pid).children(recursive=True)
        commands = " ".join(_cmdline(c) for c in children)
        for part in ("serve", "worker", "relay", "scheduler", "dramatiq lianka.actors"):
            assert part in commands, f"{part} is not running: {commands}"

        # kill -9 the web process and the worker (whose dramatiq processes would be orphaned)
        web, worker = _child(proc, "serve"), _child(proc, "worker")
        dramatiq_before = worker.children(recursive=True)
        assert dramatiq_before
        web.send_signal(signal.SIGKILL)
        worker.send_signal(signal.SIGKILL)
        new_web = _wait_for_new(proc, "serve", web.pid, log)
        new_worker = _wait_for_new(proc, "worker", worker.pid, log)
        _wait_ready(port, proc, log)  # the database and Redis stayed up, the web process came back
        _gone, alive = psutil.wait_procs(dramatiq_before, timeout=10)
        assert alive == [], "the killed worker's dramatiq processes were left running"
        deadline = time.monotonic() + 60
        while not new_worker.children(recursive=True):  # a fresh dramatiq under the new worker
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        text = log.read_text()
        assert f"web (pid {web.pid}) killed by SIGKILL" in text
        assert f"worker (pid {worker.pid}) killed by SIGKILL" in text
        assert f"web restarted (pid {new_web.pid})" in text

        children = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0, log.read_text()[-3000:]
        text = log.read_text()
        assert "stopped." in text
        assert "demo" in text  # the banner or the seed message
        _gone, alive = psutil.wait_procs(children, timeout=10)
        assert alive == [], [c.pid for c in alive]
    finally:
        if proc.poll() is None:
            proc.kill()
