"""``python -m bench [name …]``: run the benchmarks (all by default) and print their figures."""

from __future__ import annotations

import importlib
import sys

BENCHES = ["ledger", "pos", "settlement"]


def main() -> None:
    names = sys.argv[1:] or BENCHES
    for name in names:
        importlib.import_module(f"bench.{name}").run()


if __name__ == "__main__":
    main()
