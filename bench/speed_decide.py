"""B4: one decision of the Bayesian engine for S = 1000 samples, H = 24 steps, 0..256 replicas.

Data: synthetic demand samples (seed 0): a daily-shaped mean path around 120 units with
log-normal noise (sigma 0.15), one demand indicator, capacity 1 unit per replica.
The timed call is `HarmonyPolicy.decide` (everything a cycle's decision does: requirement
per sample, the Beta credible bound, expected cost of every candidate count, safety rules,
the reason), warmed up once, the calibration posterior updated by 50 earlier steps and once more
(untimed) before each timed call.
Two settings: the default one-step window, and the heaviest (chance constraint over all 24
steps after the delay, shortfall penalty so expected cost is computed for every count from
the SLA minimum up to 256);
the final line reports the heaviest. Median over repeats; the machine is shared, so the
figure is noisy.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace

import numpy as np

from bench.options import add_smoke_option, parse_with_smoke
from decision import InFlight, PoolObservation, PoolSpec, make_policy

SAMPLES = 1000
HORIZON = 24
MAX_REPLICAS = 256
REPEATS = 300
SEED = 0


def time_decisions(
    spec: PoolSpec, samples: np.ndarray, observation: PoolObservation, repeats: int
) -> float:
    """Median milliseconds of one decide() call."""
    policy = make_policy("harmony", spec)
    rng = np.random.default_rng(SEED + 1)
    for _ in range(50):
        policy.decide(observation, samples)
        policy.observe(float(samples[rng.integers(SAMPLES), spec.provisioning_delay_steps]))
    timings = []
    for _ in range(repeats):
        # Untimed, as in a cycle: the realised step before each decision updates the
        # calibration, so nothing it caches between updates is reused.
        policy.observe(float(samples[rng.integers(SAMPLES), spec.provisioning_delay_steps]))
        started = time.perf_counter()
        policy.decide(observation, samples)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1000.0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.speed_decide", description=__doc__)
    add_smoke_option(parser)
    _, size = parse_with_smoke(parser, argv)
    repeats = size.pick(full=REPEATS, smoke=5)
    rng = np.random.default_rng(SEED)
    mean_path = 120.0 + 40.0 * np.sin(np.linspace(0.0, np.pi, HORIZON))
    samples = mean_path * np.exp(0.15 * rng.standard_normal((SAMPLES, HORIZON)))
    observation = PoolObservation(
        replicas_usable=140,
        recent_demand=mean_path[:12],
        in_flight=(InFlight(8, 1),),
    )
    base = PoolSpec(
        capacity_per_replica=1.0,
        max_replicas=MAX_REPLICAS,
        provisioning_delay_steps=2,
        step_seconds=300.0,
        sla_epsilon=0.01,
        price_per_replica_hour=2.5,
    )
    heaviest = replace(base, decision_window_steps=None, shortfall_penalty_per_unit_hour=10.0)
    print(f"command: python -m bench.speed --decide{size.flag}")
    print(
        f"data: synthetic log-normal demand samples, seed {SEED}; S={SAMPLES} H={HORIZON} "
        f"candidates 0..{MAX_REPLICAS}; median of {repeats} decide() calls"
    )
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}")
    default_ms = time_decisions(base, samples, observation, repeats)
    print(f"default window (step t+2), no penalty: ms={default_ms:.3f}")
    heavy_ms = time_decisions(heaviest, samples, observation, repeats)
    print(
        "window t+2..t+23, penalty (expected cost of every count from the SLA minimum "
        f"to {MAX_REPLICAS}): ms={heavy_ms:.3f}"
    )
    print(f"decide S={SAMPLES} H={HORIZON} R={MAX_REPLICAS} ms={heavy_ms:.3f}")


if __name__ == "__main__":
    main()
