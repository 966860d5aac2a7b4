"""`harmony backtest` as a library call: from a loaded trace to results and a summary.

1. Scale the demand so that its peak needs `peak_replicas` replicas (unless told not to).
2. Train Harmony's forecaster on the first `train_fraction` of the rows (or load one).
3. Forecast every decision origin of the rest in batches (each from its own past).
4. Replay each (policy, knob) case against its own simulated pool: Celery tasks when a
   Redis broker is configured, in-process otherwise.
5. Summarise: cost–SLA curves and each policy's replica-hours at shortfall rate <= SLA.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from controller.backtest import defaults
from controller.backtest.forecasts import (
    check_model,
    forecast_origins,
    forecaster_config_for,
    train_on_history,
)
from controller.backtest.replay import FORECASTING_POLICIES, CaseResult
from controller.backtest.scenario import Scenario
from controller.backtest.summary import Summary, knobs_near_the_sla, summarise
from controller.errors import BadUsage, HarmonyError
from controller.series import Series
from decision.policies import POLICY_NAMES, default_sweep
from decision.types import PoolSpec
from forecaster.config import ForecasterConfig
from forecaster.model import Forecaster


class Reporter(Protocol):
    """Where a backtest tells how far it is (the CLI draws progress bars from this)."""

    def stage(self, description: str, total: int | None) -> Callable[[int], None]:
        """Start a stage of `total` units (None: unknown); returns "advance by n"."""
        ...

    def note(self, message: str) -> None: ...


class QuietReporter:
    def stage(self, description: str, total: int | None) -> Callable[[int], None]:
        return lambda _count: None

    def note(self, message: str) -> None:
        return None


@dataclass(frozen=True)
class BacktestConfig:
    """What `harmony backtest` was asked to do (everything but the trace options)."""

    policies: tuple[str, ...] = POLICY_NAMES
    capacity_per_replica: float = 1.0
    peak_replicas: int | None = defaults.PEAK_REPLICAS
    provisioning_delay: dt.timedelta = defaults.PROVISIONING_DELAY
    sla: float = defaults.SLA
    train_fraction: float = defaults.TRAIN_FRACTION
    sweep: bool = False
    num_samples: int = defaults.SAMPLES
    seed: int = 0
    price_per_replica_hour: float = 1.0
    min_replicas: int = 0
    max_replicas: int | None = None
    forecaster: ForecasterConfig | None = None
    model_path: Path | None = None
    observation_window: int = 288
    redis_url: str | None = None
    # Knob values per policy for --sweep, replacing decision.policies.default_sweep's.
    sweeps: dict[str, tuple[float, ...]] = field(default_factory=dict)
    # With --sweep: rounds of bisection between each policy's best feasible knob and its
    # cheaper infeasible neighbours (summary.knobs_near_the_sla), so that a policy's figure
    # depends less on where its sweep's points happen to fall.
    refine_rounds: int = 2

    def __post_init__(self) -> None:
        unknown = [name for name in self.policies if name not in POLICY_NAMES]
        if unknown or not self.policies:
            raise BadUsage(
                f"--policy: unknown {', '.join(unknown) or '(none given)'}; "
                f"choose from {','.join(POLICY_NAMES)}"
            )
        if not 0 < self.train_fraction < 1:
            raise BadUsage(f"--train-fraction must be in (0, 1), got {self.train_fraction}")
        if not 0 < self.sla < 1:
            raise BadUsage(f"--sla must be in (0, 1), e.g. 0.01, got {self.sla}")
        if not self.capacity_per_replica > 0:
            raise BadUsage("--capacity-per-replica must be positive")
        if self.peak_replicas is not None and self.peak_replicas < 1:
            raise BadUsage("--peak-replicas must be >= 1 (or 0 to keep the trace's scale)")
        if self.provisioning_delay < dt.timedelta(0):
            raise BadUsage("--provisioning-delay must be >= 0")
        if not 1 <= self.num_samples <= 10_000:
            raise BadUsage("--samples must be between 1 and 10000")

    def to_dict(self) -> dict[str, Any]:
        document = dataclasses.asdict(self)
        document["provisioning_delay"] = self.provisioning_delay.total_seconds()
        document["forecaster"] = self.forecaster.to_dict() if self.forecaster else None
        document["model_path"] = str(self.model_path) if self.model_path else None
        document.pop("redis_url")
        return document


@dataclass
class BacktestOutcome:
    series: Series
    scenario: Scenario
    results: list[CaseResult]
    summary: Summary
    demand_scale: float
    forecaster: Forecaster | None
    notes: list[str] = field(default_factory=list)


def scale_to_pool(
    series: Series, capacity_per_replica: float, peak_replicas: int | None
) -> tuple[Series, float]:
    """The series with its demand multiplied so the peak needs `peak_replicas` replicas."""
    index = series.demand_index
    if not index:
        raise HarmonyError(
            f"trace {series.name!r} marks no indicator as demand; name one with --demand-column"
        )
    if peak_replicas is None:
        return series, 1.0
    peak = (
        float(np.nanmax(series.values[:, index]))
        if np.isfinite(series.values[:, index]).any()
        else 0.0
    )
    if not peak > 0:
        raise HarmonyError(f"trace {series.name!r}: the demand is never above zero")
    factor = peak_replicas * capacity_per_replica / peak
    values = series.values.copy()
    values[:, index] *= factor
    note = (
        f"demand multiplied by {factor:.6g} so that its peak needs {peak_replicas} replicas "
        f"of capacity {capacity_per_replica:g}"
    )
    return series.with_values(values, note=note), factor


def delay_in_steps(delay: dt.timedelta, step: dt.timedelta) -> tuple[int, str | None]:
    exact = delay / step
    steps = math.ceil(exact - 1e-9)
    if abs(steps - exact) > 1e-9:
        return steps, (
            f"provisioning delay {delay} is not a whole number of {step} steps; "
            f"rounded up to {steps} steps"
        )
    return steps, None


def pool_spec(config: BacktestConfig, series: Series, delay_steps: int) -> PoolSpec:
    demand = series.values[:, series.demand_index]
    peak = float(np.nanmax(demand)) if np.isfinite(demand).any() else 0.0
    needed = math.ceil(peak / config.capacity_per_replica) if peak > 0 else 1
    capacities = tuple(config.capacity_per_replica for _ in series.demand_index)
    return PoolSpec(
        capacity_per_replica=capacities[0] if len(capacities) == 1 else capacities,
        target_utilization=1.0,
        min_replicas=config.min_replicas,
        max_replicas=config.max_replicas or max(2 * needed, config.min_replicas, 1),
        provisioning_delay_steps=delay_steps,
        step_seconds=series.step_seconds,
        price_per_replica_hour=config.price_per_replica_hour,
        sla_epsilon=config.sla,
    )


def build_scenario(
    series: Series, config: BacktestConfig, reporter: Reporter
) -> tuple[Scenario, Forecaster | None, float, list[str]]:
    """Scale, train (or load) and forecast: the shared input of every replay case."""
    notes: list[str] = []
    scaled, factor = scale_to_pool(series, config.capacity_per_replica, config.peak_replicas)
    if config.peak_replicas is not None:
        notes.append(scaled.notes[-1])
    delay_steps, rounding = delay_in_steps(config.provisioning_delay, series.step)
    if rounding:
        notes.append(rounding)
    spec = pool_spec(config, scaled, delay_steps)
    train_rows = int(len(scaled) * config.train_fraction)
    forecaster: Forecaster | None = None
    samples = None
    if FORECASTING_POLICIES.intersection(config.policies):
        if config.model_path is not None:
            try:
                folder = config.model_path
                forecaster = Forecaster.load(folder.parent if folder.is_file() else folder)
            except (OSError, ValueError) as error:
                raise HarmonyError(f"--model {config.model_path}: cannot load ({error})") from None
            check_model(forecaster, scaled, delay_steps)
            notes.append(f"forecaster loaded from {config.model_path}")
        else:
            model_config = forecaster_config_for(delay_steps, config.forecaster)
            reporter.stage(f"training the forecaster on {train_rows} rows", None)
            forecaster = train_on_history(scaled, train_rows, model_config)
            notes.append(
                f"forecaster trained on rows 0..{train_rows - 1} in "
                f"{forecaster.metadata.get('train_seconds', 0):.0f} s "
                f"({forecaster.metadata.get('epochs', '?')} epochs)"
            )
        advance = reporter.stage(
            f"forecasting {len(scaled) - train_rows} origins", len(scaled) - train_rows
        )
        samples = forecast_origins(
            forecaster,
            scaled.values,
            scaled.timestamps(),
            train_rows,
            scaled.demand_index,
            num_samples=config.num_samples,
            seed=config.seed,
            progress=advance,
        )
    scenario = Scenario(
        name=series.name,
        demand=scaled.values[:, scaled.demand_index],
        start=scaled.start,
        step=scaled.step,
        decide_from=train_rows,
        spec=spec,
        samples=samples,
        observation_window=config.observation_window,
    )
    return scenario, forecaster, factor, notes


def plan_knobs(policy: str, config: BacktestConfig) -> list[float | None]:
    """Knob values a policy runs at: its sweep with --sweep, else its default (Harmony: ε = SLA)."""
    if not config.sweep:
        return [config.sla] if policy == "harmony" else [None]
    knobs: list[float | None] = list(config.sweeps.get(policy) or default_sweep(policy))
    if policy == "harmony" and config.sla not in knobs:
        knobs.append(config.sla)
    return knobs


def run_backtest(
    series: Series, config: BacktestConfig, reporter: Reporter | None = None
) -> BacktestOutcome:
    from controller.tasks import Case, run_cases

    reporter = reporter or QuietReporter()
    scenario, forecaster, factor, notes = build_scenario(series, config, reporter)
    cases = [
        Case(scenario, policy, knob)
        for policy in config.policies
        for knob in plan_knobs(policy, config)
    ]
    advance = reporter.stage(f"replaying {len(cases)} cases", len(cases))
    results = run_cases(cases, redis_url=config.redis_url, on_done=lambda _c, _r: advance(1))
    for round_number in range(config.refine_rounds if config.sweep else 0):
        more = [
            Case(scenario, policy, knob)
            for policy, knobs in knobs_near_the_sla(results, config.sla).items()
            for knob in knobs
        ]
        if not more:
            break
        advance = reporter.stage(
            f"refining near the SLA (round {round_number + 1}): {len(more)} cases", len(more)
        )
        results += run_cases(
            more, redis_url=config.redis_url, on_done=lambda _c, _r, step=advance: step(1)
        )
    summary = summarise(results, config.sla)
    for message in notes:
        reporter.note(message)
    return BacktestOutcome(
        series=series,
        scenario=scenario,
        results=results,
        summary=summary,
        demand_scale=factor,
        forecaster=forecaster,
        notes=notes + summary.notes,
    )
