"""The supervision of `lianka run`'s children: why a child stopped, and how long before it comes back."""

from __future__ import annotations

import sys
import time

from lianka.platform.supervisor import Supervisor, backoff, describe_exit


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff(n, 1.0, 30.0) for n in range(1, 9)] == [1, 2, 4, 8, 16, 30, 30, 30]


def test_exit_reasons() -> None:
    assert describe_exit(-9) == "killed by SIGKILL"
    assert describe_exit(-15) == "killed by SIGTERM"
    assert describe_exit(3) == "exit code 3"


def test_a_crashing_child_is_restarted_later_each_time() -> None:
    said: list[str] = []
    sup = Supervisor(
        {"crashy": [sys.executable, "-c", "raise SystemExit(3)"]}, say=said.append, base=0.2, cap=0.4, healthy_after=60
    )
    sup.start()
    try:
        deadline = time.monotonic() + 30
        while sum("restarting in" in line for line in said) < 3 and time.monotonic() < deadline:
            sup.tick()
            time.sleep(0.02)
        crashes = [line for line in said if "restarting in" in line]
        # doubled, then capped: it never stays up long enough to start again at the base
        assert [line.rsplit("restarting in ", 1)[1] for line in crashes] == ["0.2 s", "0.4 s", "0.4 s"]
        assert all(line.startswith("crashy (pid ") and "exit code 3 after" in line for line in crashes)
        assert sum(line.startswith("crashy restarted (pid ") for line in said) == 2
    finally:
        sup.stop(timeout=5)
