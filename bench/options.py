"""Command-line options several benchmarks share."""

from __future__ import annotations

import argparse

from forecaster.config import FLOW_TRANSFORMS, ForecasterConfig


def add_flow_transform_option(parser: argparse.ArgumentParser) -> None:
    """`--flow-transform spline|affine`, defaulting to the forecaster's own default."""
    parser.add_argument(
        "--flow-transform",
        choices=list(FLOW_TRANSFORMS),
        default=ForecasterConfig().flow_transform,
        help="coupling layers of the flow head",
    )
