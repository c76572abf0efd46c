"""``python -m bench [name …] [--members N] [--entries N] [--examples N] [--minutes M]``: run the benchmarks
(all by default) and print their figures. ``fuzz`` (Schemathesis, large budget) and ``soak`` (30 minutes of
mixed traffic) run last."""

from __future__ import annotations

import importlib
import sys

BENCHES = ["ledger", "pos", "settlement", "segments", "campaigns", "reports", "chaos", "fuzz", "soak"]


def main() -> None:
    args = sys.argv[1:]
    # flags (``--members N``) belong to the benchmark that reads them
    names = [a for i, a in enumerate(args) if not a.startswith("--") and not (i and args[i - 1].startswith("--"))]
    names = names or BENCHES
    for name in names:
        importlib.import_module(f"bench.{name}").run()


if __name__ == "__main__":
    main()
