"""`lianka run` (what `make run` calls) serves the app with worker, relay and scheduler; Ctrl-C stops all."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import psutil
import pytest

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_run_serves_everything_and_ctrl_c_stops_it(project_root) -> None:
    port = _free_port()
    env = {**os.environ, "LIANKA_PORT": str(port)}
    proc = subprocess.Popen([sys.executable, "-m", "lianka.cli", "run"], cwd=project_root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        ready = None
        while time.monotonic() < deadline:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                if ready.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            time.sleep(0.3)
        assert ready is not None
        assert ready.status_code == 200
        children = psutil.Process(proc.pid).children(recursive=True)
        commands = " ".join(" ".join(c.cmdline()) for c in children)
        for part in ("serve", "worker", "relay", "scheduler", "dramatiq lianka.actors"):
            assert part in commands, f"{part} is not running: {commands}"
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, out[-3000:]
        assert "stopped." in out
        assert "demo" in out  # the banner or the seed message
        _gone, alive = psutil.wait_procs(children, timeout=10)
        assert alive == [], [c.pid for c in alive]
    finally:
        if proc.poll() is None:
            proc.kill()
