"""Where a web process's CPU goes, from a ``py-spy record -f raw`` profile (decision 0053).

``.venv/bin/python -m bench.pyspy_shares sale.txt`` prints one row per category: the main thread's
samples attributed to the innermost frame whose file matches a category. py-spy shows no native
frames, so asyncpg's Cython protocol counts as the Python line that awaits it, and uvloop's C loop
as ``Runner.run``. Not a benchmark: a reading aid for the profile the README's POS section records.
"""

from __future__ import annotations

import sys
from collections import Counter

#: (category, substrings of a frame's "function (file:line)"), most specific first
CATEGORIES: list[tuple[str, tuple[str, ...]]] = [
    ("SQL round trips: asyncpg protocol (send, await reply, decode)", ("asyncpg/",)),
    ("SQLAlchemy (session, unit of work, adapter)", ("sqlalchemy/", "greenlet")),
    ("authentication (token, principal)", ("identity/", "joserfc")),
    (
        "middleware, guards, logging, metrics",
        ("prometheus", "request_id", "security_headers", "middleware", "edge_guard", "billing_gate", "structlog"),
    ),
    ("serialisation (msgspec, JSON)", ("msgspec", "_json", "encode_json", "decode_json", "fingerprint")),
    ("sale logic in Python (pricing, context, ledger prepare)", ("tenants/", "alliance/", "platform/")),
    ("litestar (routing, DI, request/response)", ("litestar/",)),
    ("uvicorn + httptools (HTTP parse/write)", ("uvicorn/protocols", "httptools")),
]
LOOP = "event loop: idle or inside uvloop (C)"


def category(frames: list[str]) -> str:
    if frames[-1].startswith(("Runner.run", "asyncio_run", "Server.serve")):
        return LOOP
    for frame in reversed(frames):
        for name, keys in CATEGORIES:
            if any(k in frame for k in keys):
                return name
    return "other"


def shares(lines: list[str]) -> tuple[int, Counter[str]]:
    counts: Counter[str] = Counter()
    total = 0
    for line in lines:
        stack, _, n = line.rstrip().rpartition(" ")
        frames = stack.split(";")
        if not stack or frames[0].startswith("Thread._bootstrap"):  # not the event loop's thread
            continue
        total += int(n)
        counts[category(frames)] += int(n)
    return total, counts


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as f:
        total, counts = shares(f.readlines())
    print(f"main-thread samples: {total}")
    for name, n in counts.most_common():
        print(f"| {name} | {100 * n / max(total, 1):.0f} % |")


if __name__ == "__main__":
    main()
