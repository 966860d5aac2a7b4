"""Command-line options several benchmarks share."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from controller.series import Series
    from forecaster.config import ForecasterConfig

# `--smoke`: the shapes below are small enough that a benchmark runs end to end in
# seconds on a shared 2-core machine, and large enough that every step still has data
# (train, validation and test windows, tune and test periods of a backtest, and more
# than the day of history that seasonal baselines and features look back).
SMOKE_DAYS = 3
SMOKE_CONTEXT = 24
SMOKE_SAMPLES = 16
SMOKE_FORECASTER: dict[str, Any] = {
    "d_model": 16,
    "num_heads": 2,
    "feedforward": 32,
    "context_features": 16,
    "flow_layers": 1,
    "flow_hidden": 16,
    "max_epochs": 1,
    "windows_per_epoch": 128,
    "batch_size": 64,
    "validation_samples": 4,
    "max_train_seconds": 30.0,
}


def add_flow_transform_option(parser: argparse.ArgumentParser) -> None:
    """`--flow-transform spline|affine`, defaulting to the forecaster's own default."""
    # Imported here: the forecaster brings torch, which the benchmarks without a model
    # (speed_decide, api_load) would otherwise load for seconds.
    from forecaster.config import FLOW_TRANSFORMS, ForecasterConfig

    parser.add_argument(
        "--flow-transform",
        choices=list(FLOW_TRANSFORMS),
        default=ForecasterConfig().flow_transform,
        help="coupling layers of the flow head",
    )


def add_smoke_option(parser: argparse.ArgumentParser) -> None:
    """`--smoke`: the benchmark's code path on tiny data with a tiny model (see `RunSize`)."""
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny data and a tiny model, seconds end to end: checks that the benchmark "
        "still runs (the tests do); its figures mean nothing",
    )


def parse_with_smoke(
    parser: argparse.ArgumentParser, argv: list[str] | None, **smoke_defaults: Any
) -> tuple[argparse.Namespace, RunSize]:
    """Parse `argv` (after `add_smoke_option`); under `--smoke`, `smoke_defaults` replace
    the full run's defaults, so options given on the command line still win."""
    if parser.parse_known_args(argv)[0].smoke:
        parser.set_defaults(**smoke_defaults)
    args = parser.parse_args(argv)
    return args, RunSize(smoke=args.smoke)


@dataclass(frozen=True)
class RunSize:
    """A benchmark's full run, or its `--smoke` run: the same code path end to end on
    tiny data with a tiny model, so that a change that breaks a benchmark fails the tests
    instead of the next person who runs it."""

    smoke: bool = False

    @property
    def flag(self) -> str:
        """The option to show in a printed command."""
        return " --smoke" if self.smoke else ""

    def pick(self, full: int, smoke: int) -> int:
        """A count of the benchmark's own (pools, repeats, steps) for this run."""
        return smoke if self.smoke else full

    def series(self, series: Series) -> Series:
        """The trace's first `SMOKE_DAYS` in a smoke run."""
        if not self.smoke:
            return series
        return series.slice(0, round(SMOKE_DAYS * 86_400 / series.step_seconds))

    def context(self, steps: int) -> int:
        return min(steps, SMOKE_CONTEXT) if self.smoke else steps

    def forecaster(self, config: ForecasterConfig) -> ForecasterConfig:
        """`config` (its horizon, head and flow kept) with a short context, a tiny model
        and one short epoch in a smoke run."""
        if not self.smoke:
            return config
        return config.replace(
            context_length=self.context(config.context_length), **SMOKE_FORECASTER
        )
