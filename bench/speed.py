"""Speed benchmarks (B4): `python -m bench.speed --decide` or `--forecast`.

`--decide` times the decision engine alone; `--forecast` (the forecaster's benchmark,
bench/speed_forecast.py) is imported only when asked for, so each runs without the other.
"""

from __future__ import annotations

import argparse
import importlib

from bench.options import add_smoke_option, parse_with_smoke


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.speed", description=__doc__)
    parser.add_argument("--decide", action="store_true", help="time the decision engine")
    parser.add_argument("--forecast", action="store_true", help="time the forecaster")
    parser.add_argument("--operator", action="store_true", help="time 500 pools' cycle")
    add_smoke_option(parser)
    args, size = parse_with_smoke(parser, argv)
    if not (args.decide or args.forecast or args.operator):
        parser.error("choose --decide, --forecast and/or --operator")
    forwarded = size.flag.split()
    if args.operator:
        importlib.import_module("bench.speed_operator").main(forwarded)
    if args.forecast:
        importlib.import_module("bench.speed_forecast").main(forwarded)
    if args.decide:
        importlib.import_module("bench.speed_decide").main(forwarded)


if __name__ == "__main__":
    main()
