"""Issue 19, day one: Harmony's fallback (no forecaster) on the headline cases, at ε = SLA.

    nice -n 10 .venv/bin/python -m bench.fallback [--cases gentd26,fisher1:8] [--workers 2]

The B3 protocol (bench.backtest): train 50% / tune 25% / test 25%, the pool sized so the
train part's 99.9th percentile needs P = 8, 32, 128 replicas, 10-minute provisioning
delay, SLA 1%. Nothing is trained: every policy here decides without Harmony's
forecaster, from the start of the tune period, state carried into test; figures are the
test period's. Side by side, untuned: `harmony-fallback` at ε = SLA with the backtest's
8 days of history in its observation; the same with only the operator's default
context window (`cold`: it learns from the tune period alone); the `reactive` policy
(cluster-autoscaler-like, default 0.5, what a pool ran before the fallback existed); the
`self-tuning-buffer` refitted daily to the SLA; and the `oracle` (perfect foresight).
A policy met the SLA when its test shortfall is at most 1.25 × SLA (the protocol's
binomial allowance); `strict` counts those at most the SLA itself.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import statistics
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from bench.backtest import DELAY, POOL_SIZES, SEED, SLA, TRACES, Trace
from bench.options import RunSize, add_smoke_option, parse_with_smoke
from controller.backtest.protocol import MET_FACTOR
from controller.backtest.replay import CaseResult, run_case
from controller.backtest.runner import BacktestConfig, case_scenario, prepare_trace
from controller.operator.spec import PoolConfig

FALLBACK = "harmony-fallback"
# Each replay: (label, policy, knob, observation window or None for the backtest's).
OPERATOR_CONTEXT = int(
    next(field.default for field in dataclasses.fields(PoolConfig) if field.name == "context_steps")  # type: ignore[arg-type]
)
RUNS: tuple[tuple[str, str, float | None, int | None], ...] = (
    ("fallback", FALLBACK, SLA, None),
    ("cold", FALLBACK, SLA, OPERATOR_CONTEXT),
    ("reactive", "reactive", None, None),
    ("self_tuning", "self-tuning-buffer", SLA, None),
    ("oracle", "oracle", None, None),
)


@dataclass(frozen=True)
class CaseFigures:
    """One case's test shortfall, replica-hours and the fallback's tune shortfall."""

    name: str
    shortfall: dict[str, float]
    replica_hours: dict[str, float]
    fallback_tune_shortfall: float

    def met(self, label: str, strict: bool = False) -> bool:
        allowed = SLA if strict else MET_FACTOR * SLA
        return self.shortfall[label] <= allowed + 1e-12

    def line(self) -> str:
        parts = " ".join(
            f"{label}={self.shortfall[label]:.4f}/{self.replica_hours[label]:.0f}"
            for label, *_ in RUNS
        )
        return (
            f"case {self.name}: test shortfall/replica-hours {parts} "
            f"fallback_tune_shortfall={self.fallback_tune_shortfall:.4f}"
        )


def run_trace(trace: Trace, sizes: Sequence[int], run_size: RunSize) -> list[CaseFigures]:
    """Every pool size of one trace."""
    config = BacktestConfig(
        policies=tuple(dict.fromkeys(policy for _, policy, _, _ in RUNS)),
        provisioning_delay=DELAY,
        sla=SLA,
        train_fraction=0.5,
        seed=SEED,
    )
    prepared = prepare_trace(run_size.series(trace.load()), config)
    out = []
    for size in sizes:
        scenario, _ = case_scenario(prepared, config, size)
        results: dict[str, CaseResult] = {}
        for label, policy, knob, window in RUNS:
            replayed = scenario
            if window is not None:
                replayed = dataclasses.replace(scenario, observation_window=window)
            results[label] = run_case(replayed, policy, knob)
        tune = results["fallback"].tune_metrics
        out.append(
            CaseFigures(
                name=f"{trace.key}:P{size}",
                shortfall={k: v.metrics.shortfall_rate for k, v in results.items()},
                replica_hours={k: v.metrics.replica_hours for k, v in results.items()},
                fallback_tune_shortfall=math.nan if tune is None else tune.shortfall_rate,
            )
        )
    return out


def median(values: list[float]) -> float:
    finite = [value for value in values if math.isfinite(value)]
    return statistics.median(finite) if finite else math.nan


def summary(cases: list[CaseFigures]) -> str:
    count = len(cases)

    def met(label: str, strict: bool = False) -> str:
        return f"{sum(case.met(label, strict) for case in cases)}/{count}"

    def ratio(label: str, versus: str) -> float:
        return median(
            [
                case.replica_hours[label] / case.replica_hours[versus]
                if case.replica_hours[versus] > 0
                else math.nan
                for case in cases
            ]
        )

    shortfalls = [case.shortfall["fallback"] for case in cases]
    return (
        f"fallback sla={SLA:g} cases={count} met={met('fallback')} "
        f"met_strict={met('fallback', strict=True)} met_cold={met('cold')} "
        f"reactive_met={met('reactive')} self_tuning_met={met('self_tuning')} "
        f"shortfall_median={median(shortfalls):.4f} shortfall_worst={max(shortfalls):.4f} "
        f"cold_shortfall_worst={max(case.shortfall['cold'] for case in cases):.4f} "
        f"rh_vs_oracle_median={ratio('fallback', 'oracle'):.3f} "
        f"cold_rh_vs_oracle_median={ratio('cold', 'oracle'):.3f} "
        f"rh_vs_reactive_median={ratio('fallback', 'reactive'):.3f} "
        f"rh_vs_self_tuning_median={ratio('fallback', 'self_tuning'):.3f}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fallback", description=__doc__)
    parser.add_argument(
        "--cases",
        default="",
        help="comma-separated trace keys (gentd26, fisher1..fisher10, alibaba), optionally "
        "with :P (e.g. gentd26:32); default all traces at P = 8, 32, 128",
    )
    parser.add_argument("--workers", type=int, default=1, help="processes running traces")
    add_smoke_option(parser)
    args, run_size = parse_with_smoke(parser, argv, cases="fisher3:8")
    wanted: dict[str, list[int]] = {}
    for item in filter(None, (part.strip() for part in args.cases.split(","))):
        key, _, size = item.partition(":")
        wanted.setdefault(key, []).extend([int(size)] if size else POOL_SIZES)
    known = {trace.key: trace for trace in TRACES}
    unknown = sorted(set(wanted) - set(known))
    if unknown:
        parser.error(f"--cases: unknown {', '.join(unknown)}; choose from {', '.join(known)}")
    if args.workers < 1:
        parser.error(f"--workers must be at least 1, got {args.workers}")
    plan = [(known[key], tuple(sizes)) for key, sizes in wanted.items()] or [
        (trace, POOL_SIZES) for trace in TRACES
    ]
    print(
        f"fallback (issue 19, day one): sla={SLA} delay={DELAY} split=50/25/25 "
        f"pool_sizes={POOL_SIZES} no forecaster; cold = observation of {OPERATOR_CONTEXT} "
        f"steps; figures = test shortfall/replica-hours; data=../shared/data "
        f"command={' '.join(sys.argv)}",
        flush=True,
    )
    started = time.perf_counter()
    cases: list[CaseFigures] = []
    if args.workers > 1:
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        with ProcessPoolExecutor(max_workers=args.workers) as pool:
            futures = [pool.submit(run_trace, trace, sizes, run_size) for trace, sizes in plan]
            for future in futures:
                for figures in future.result():
                    print(figures.line(), flush=True)
                    cases.append(figures)
    else:
        for trace, sizes in plan:
            for figures in run_trace(trace, sizes, run_size):
                print(figures.line(), flush=True)
                cases.append(figures)
    print(f"seconds_total={time.perf_counter() - started:.0f}", flush=True)
    print(summary(cases), flush=True)


if __name__ == "__main__":
    main()
