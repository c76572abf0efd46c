"""Named crash points for failure tests.

``LIANKA_FAULTS="relay.after_enqueue=7,settlement.close.after_lines=1"`` makes the process die with
SIGKILL the 7th time it passes ``fault_point("relay.after_enqueue")``. Unset (always, outside
tests), a fault point costs one dict lookup. This lets tests kill a real process at the worst
moment (after a side effect, before the commit) instead of guessing with timers.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

_counts: Counter[str] = Counter()


def _armed() -> dict[str, int]:
    spec = os.environ.get("LIANKA_FAULTS", "")
    out: dict[str, int] = {}
    for item in filter(None, (p.strip() for p in spec.split(","))):
        name, _, n = item.partition("=")
        out[name] = int(n or "1")
    return out


def fault_point(name: str) -> None:
    armed = _armed()
    if name not in armed:
        return
    _counts[name] += 1
    if _counts[name] >= armed[name]:
        os.kill(os.getpid(), signal.SIGKILL)
