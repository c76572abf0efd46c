"""``python -m bench [name …] [--members N] [--entries N]``: run the benchmarks (all by default) and print their figures."""

from __future__ import annotations

import importlib
import sys

BENCHES = ["ledger", "pos", "settlement", "segments", "campaigns", "reports", "chaos"]


def main() -> None:
    args = sys.argv[1:]
    # flags (``--members N``) belong to the benchmark that reads them
    names = [a for i, a in enumerate(args) if not a.startswith("--") and not (i and args[i - 1].startswith("--"))]
    names = names or BENCHES
    for name in names:
        importlib.import_module(f"bench.{name}").run()


if __name__ == "__main__":
    main()
