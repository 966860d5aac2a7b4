"""B4 (forecast part): time of `Forecaster.sample` with S=200 for one pool and 500 pools.

The model has the default architecture (hierarchical encoder + coupling spline flow) for a
pool with one demand indicator, L=144, H=12; its weights are freshly initialised, since
the time of a forward pass does not depend on their values. 500 pools are one batched
call (the operator batches every pool of a cycle into one forward pass).

    python -m bench.speed --forecast
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from bench.options import add_smoke_option, parse_with_smoke
from forecaster import Forecaster, ForecasterConfig
from forecaster.windows import Scaler

SAMPLES = 200
POOLS = 500


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.speed_forecast", description=__doc__)
    add_smoke_option(parser)
    _, size = parse_with_smoke(parser, argv)
    pools = size.pick(full=POOLS, smoke=4)
    one_pool_repeats = size.pick(full=30, smoke=3)  # each on its own pool's window
    batched_repeats = size.pick(full=3, smoke=1)
    # One intra-op thread: on a shared 2-core machine a second one spin-waits more than it
    # helps (measured: 500 pools 14.6 s with two threads, about 6 s with one).
    threads = 1
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    config = size.forecaster(ForecasterConfig(context_length=144, horizon=12))
    context = config.context_length
    model = Forecaster(
        config, [1], Scaler(mean=np.array([100.0]), scale=np.array([20.0])), step_seconds=300.0
    )
    rng = np.random.default_rng(0)
    windows = 100.0 + 20.0 * rng.standard_normal((pools, context, 1))
    ends = 1_700_000_000.0 + 300.0 * np.arange(pools)
    print(
        f"B4 forecast speed: S={SAMPLES}, L={context}, H=12, 1 indicator, "
        f"{model.parameter_count} parameters, torch threads={threads}, seed=0; "
        f"command: python -m bench.speed --forecast{size.flag}",
        flush=True,
    )
    model.sample(windows[:1], ends[:1], SAMPLES, seed=0)  # warm-up
    one_pool = []
    for repeat in range(one_pool_repeats):
        began = time.perf_counter()
        model.sample(windows[repeat : repeat + 1], ends[repeat : repeat + 1], SAMPLES, seed=repeat)
        one_pool.append(time.perf_counter() - began)
    many = []
    for repeat in range(batched_repeats):
        began = time.perf_counter()
        model.sample(windows, ends, SAMPLES, seed=repeat)
        many.append(time.perf_counter() - began)
    print(f"one pool: median of {one_pool_repeats} = {statistics.median(one_pool) * 1000:.1f} ms")
    print(f"{pools} pools batched: median of {batched_repeats} = {statistics.median(many):.2f} s")
    print(
        f"forecast one_pool_ms={statistics.median(one_pool) * 1000:.0f} "
        f"pools{pools}_s={statistics.median(many):.1f}"
    )


if __name__ == "__main__":
    main()
