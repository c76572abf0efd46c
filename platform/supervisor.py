"""Supervision of ``lianka run``'s processes (web, worker, relay, scheduler).

A child that exits on its own is restarted after a back-off that doubles with each crash in a row
(1 s, 2 s, 4 s … capped) and starts again at 1 s once the child has stayed up for a while; every
exit is reported with its exit code or signal. Only a stop (Ctrl-C, SIGTERM, SIGHUP) ends them all.

Each child leads a session of its own, so stopping or replacing it reaches everything it started
(uvicorn's processes, dramatiq's worker processes — a crashed child's leftovers are killed before it
comes back, so two dramatiq workers never run for one slot) and a Ctrl-C in the terminal reaches
only ``lianka run``, which then stops the children in order. On Linux every child also gets
``PR_SET_PDEATHSIG``: should ``lianka run`` itself be killed, its children follow.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

_PR_SET_PDEATHSIG = 1
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None


def die_with_parent() -> None:
    """``preexec_fn`` for a child that must not outlive its parent (SIGTERM when the parent dies)."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


def backoff(crashes: int, base: float, cap: float) -> float:
    """Seconds to wait before restarting after the ``crashes``-th crash in a row (1-based)."""
    return float(min(cap, base * 2 ** max(0, crashes - 1)))


@dataclass
class Child:
    name: str
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    #: crashes in a row, each within ``healthy_after`` seconds of its start
    crashes: int = 0
    restart_at: float | None = None


class Supervisor:
    def __init__(
        self,
        commands: dict[str, list[str]],
        *,
        say: Callable[[str], None],
        base: float = 1.0,
        cap: float = 30.0,
        healthy_after: float = 30.0,
    ) -> None:
        self.children = {name: Child(name, argv) for name, argv in commands.items()}
        self.say, self.base, self.cap, self.healthy_after = say, base, cap, healthy_after

    def start(self) -> None:
        for child in self.children.values():
            self._spawn(child)

    def _spawn(self, child: Child) -> None:
        child.proc = subprocess.Popen(child.argv, start_new_session=True, preexec_fn=die_with_parent)  # noqa: PLW1509
        child.started, child.restart_at = time.monotonic(), None

    def tick(self) -> None:
        """Notice exits and schedule their restart; restart those whose back-off is over."""
        now = time.monotonic()
        for child in self.children.values():
            proc = child.proc
            if proc is not None and proc.poll() is not None:
                _signal_group(proc.pid, signal.SIGKILL)  # whatever it started goes with it
                ran = now - child.started
                child.crashes = 1 if ran >= self.healthy_after else child.crashes + 1
                delay = backoff(child.crashes, self.base, self.cap)
                self.say(
                    f"{child.name} (pid {proc.pid}) {describe_exit(proc.returncode)} after {ran:.0f} s; "
                    f"restarting in {delay:g} s"
                )
                child.proc, child.restart_at = None, now + delay
            elif proc is None and child.restart_at is not None and now >= child.restart_at:
                self._spawn(child)
                assert child.proc is not None
                self.say(f"{child.name} restarted (pid {child.proc.pid})")

    def run(self, stopping: Callable[[], bool], poll: float = 0.5) -> None:
        while not stopping():
            self.tick()
            time.sleep(poll)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM every child (each stops what it started), wait up to ``timeout``, then SIGKILL
        whatever is left in their groups."""
        running = [c.proc for c in self.children.values() if c.proc is not None]
        for proc in running:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in running:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            _signal_group(proc.pid, signal.SIGKILL)


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
