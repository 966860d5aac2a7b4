"""`python -m bench.soak`: the long soak. Prints the fault schedule (seeded), each fault as
it ends, how each was seen, any broken invariant, and last exactly one summary line:

    soak pools=50 cycles=N faults=N actions=N doubled=0 lost=0 unsafe_scale_downs=0 split_brain=0
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.soak.run import SoakConfig, run_soak


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--pools", type=int, default=50)
    parser.add_argument("--cycles", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--cycle-seconds", type=float, default=2.0, help="wall seconds per 1-minute interval"
    )
    parser.add_argument("--keep", type=Path, default=None, help="keep logs in this folder")
    options = parser.parse_args()
    result = run_soak(
        SoakConfig(
            pools=options.pools,
            cycles=options.cycles,
            seed=options.seed,
            cycle_seconds=options.cycle_seconds,
            keep=options.keep,
        )
    )
    verdict = result.verdict
    print("how each fault was seen:")
    for line in verdict.faults:
        print(f"  {line}")
    for problem in verdict.problems:
        print(f"  problem: {problem}")
    print(
        f"soak took {result.seconds:.0f} s; below_floor={verdict.below_floor} "
        f"invisible={verdict.invisible} uncleared={verdict.uncleared}"
    )
    print(result.line())


if __name__ == "__main__":
    main()
