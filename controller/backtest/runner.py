"""`harmony backtest` as a library call: from a loaded trace to the deployable figures.

1. Split the trace: train (the first `train_fraction`), then tune and test (halves of the
   rest); see controller.backtest.protocol.
2. Train Harmony's forecaster on the train part (or load one) and forecast every decision
   origin of tune and test in batches, each from its own past; the classical forecasters
   of the predictive baselines likewise. All on the trace's own scale, once per trace.
3. Size the pool from the train part (`case_scenario`: its 99.9th percentile needs
   `peak_replicas` replicas); forecasts scale with the demand.
4. Deploy and judge every policy (protocol.evaluate_policy): Celery tasks, one per policy,
   when a Redis broker is configured, in-process otherwise.
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
import numpy.typing as npt

from controller.backtest import defaults
from controller.backtest.forecasts import (
    check_model,
    forecast_origins,
    forecaster_config_for,
    train_on_history,
)
from controller.backtest.protocol import (
    POOL_QUANTILE,
    CaseOutcome,
    Split,
    ordered_policies,
)
from controller.backtest.replay import CaseResult, forecasts_needed
from controller.backtest.scenario import Scenario
from controller.bounds import require_between
from controller.errors import BadUsage, HarmonyError
from controller.series import Series
from decision.policies import POLICY_NAMES
from decision.types import PoolSpec, SlaKind
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
    sla_kind: SlaKind = SlaKind.shortfall
    max_delay: dt.timedelta | None = None
    min_node_lifetime: dt.timedelta = dt.timedelta(0)
    max_scale_downs_per_hour: int | None = None

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
        self._check_pool()
        delay = self.provisioning_delay
        if not dt.timedelta(0) <= delay <= defaults.MAX_DURATION:
            raise BadUsage(
                f"--provisioning-delay {delay.total_seconds():g}s is out of range; give a "
                f"duration from 0s to {defaults.MAX_DURATION.days}d"
            )
        require_between("--samples", self.num_samples, 1, defaults.MAX_SAMPLES)
        require_between("--seed", self.seed, 0, defaults.MAX_SEED)
        self._check_sla_kind()

    def _check_sla_kind(self) -> None:
        if self.sla_kind is SlaKind.shortfall:
            if self.max_delay is not None:
                raise BadUsage("--max-delay applies to --sla-kind queue only; drop it")
            return
        if self.max_delay is None:
            raise BadUsage(
                "--sla-kind queue needs --max-delay, the longest a job may wait (e.g. 10m)"
            )
        if not dt.timedelta(0) < self.max_delay <= defaults.MAX_DURATION:
            raise BadUsage(
                f"--max-delay {self.max_delay.total_seconds():g}s is out of range; give a "
                f"duration above 0s and up to {defaults.MAX_DURATION.days}d"
            )

    def _check_pool(self) -> None:
        require_between(
            "--capacity-per-replica",
            self.capacity_per_replica,
            0,
            defaults.MAX_CAPACITY_PER_REPLICA,
            above_low=True,
        )
        if self.peak_replicas is not None:
            # 0 on the command line keeps the trace's scale (None here)
            require_between("--peak-replicas", self.peak_replicas, 1, defaults.MAX_REPLICAS)
        require_between("--min-replicas", self.min_replicas, 0, defaults.MAX_REPLICAS)
        if self.max_replicas is not None:
            lowest = max(self.min_replicas, 1)
            require_between("--max-replicas", self.max_replicas, lowest, defaults.MAX_REPLICAS)
        require_between(
            "--price", self.price_per_replica_hour, 0, defaults.MAX_PRICE_PER_REPLICA_HOUR
        )
        lifetime = self.min_node_lifetime
        if not dt.timedelta(0) <= lifetime <= defaults.MAX_DURATION:
            raise BadUsage(
                f"--min-node-lifetime {lifetime.total_seconds():g}s is out of range; give a "
                f"duration from 0s to {defaults.MAX_DURATION.days}d"
            )
        if self.max_scale_downs_per_hour is not None:
            require_between("--max-scale-downs-per-hour", self.max_scale_downs_per_hour, 1, 3600)

    def to_dict(self) -> dict[str, Any]:
        document = dataclasses.asdict(self)
        document["provisioning_delay"] = self.provisioning_delay.total_seconds()
        document["sla_kind"] = self.sla_kind.value
        document["max_delay"] = self.max_delay.total_seconds() if self.max_delay else None
        document["min_node_lifetime"] = self.min_node_lifetime.total_seconds()
        document["forecaster"] = self.forecaster.to_dict() if self.forecaster else None
        document["model_path"] = str(self.model_path) if self.model_path else None
        document.pop("redis_url")
        return document


@dataclass
class PreparedTrace:
    """A trace on its own scale with every forecast its policies need, made once and
    shared by every pool size: `sources` maps a forecast source to
    `[T - split.train_end, S, H, K]` (float32)."""

    series: Series
    split: Split
    delay_steps: int
    forecaster: Forecaster | None
    sources: dict[str, npt.NDArray[np.float32]]
    notes: list[str] = field(default_factory=list)


@dataclass
class BacktestOutcome:
    series: Series
    scenario: Scenario
    case: CaseOutcome
    demand_scale: float
    forecaster: Forecaster | None
    notes: list[str] = field(default_factory=list)

    @property
    def results(self) -> list[CaseResult]:
        """Every run made, policy by policy."""
        return [run for item in self.case.policies.values() for run in item.runs]


def delay_in_steps(delay: dt.timedelta, step: dt.timedelta) -> tuple[int, str | None]:
    exact = delay / step
    steps = math.ceil(exact - 1e-9)
    if abs(steps - exact) > 1e-9:
        return steps, (
            f"provisioning delay {delay} is not a whole number of {step} steps; "
            f"rounded up to {steps} steps"
        )
    return steps, None


def pool_factor(series: Series, train_end: int, capacity: float, peak_replicas: int) -> float:
    """The factor that makes the train part's 99.9th percentile of demand need
    `peak_replicas` replicas (the busiest demand indicator decides)."""
    index = series.demand_index
    if not index:
        raise HarmonyError(
            f"trace {series.name!r} marks no indicator as demand; name one with --demand-column"
        )
    train = series.values[:train_end, index]
    observed = train[np.isfinite(train)]
    level = float(np.percentile(observed, POOL_QUANTILE)) if observed.size else 0.0
    if not level > 0:
        raise HarmonyError(
            f"trace {series.name!r}: the demand of the training part (rows 0..{train_end - 1}) "
            "is never above zero; raise --train-fraction, or use a trace whose demand is"
            " above zero early on"
        )
    return peak_replicas * capacity / level


def scale_demand(series: Series, factor: float, why: str) -> Series:
    """The series with its demand indicators multiplied by `factor`."""
    values = series.values.copy()
    values[:, series.demand_index] *= factor
    return series.with_values(values, note=f"demand multiplied by {factor:.6g} {why}")


def pool_spec(
    config: BacktestConfig,
    peak_replicas: int,
    step_seconds: float,
    delay_steps: int,
    indicators: int,
) -> PoolSpec:
    capacities = tuple(config.capacity_per_replica for _ in range(indicators))
    if config.sla_kind is SlaKind.queue and indicators != 1:
        raise BadUsage(
            f"--sla-kind queue needs one demand indicator (the work arriving per step); the "
            f"trace marks {indicators}: name one with --demand-column"
        )
    return PoolSpec(
        capacity_per_replica=capacities[0] if len(capacities) == 1 else capacities,
        target_utilization=1.0,
        min_replicas=config.min_replicas,
        max_replicas=config.max_replicas or max(4 * peak_replicas, config.min_replicas, 1),
        provisioning_delay_steps=delay_steps,
        step_seconds=step_seconds,
        price_per_replica_hour=config.price_per_replica_hour,
        sla_epsilon=config.sla,
        sla_kind=config.sla_kind,
        max_delay_seconds=config.max_delay.total_seconds() if config.max_delay else None,
        min_node_lifetime_seconds=config.min_node_lifetime.total_seconds(),
        max_scale_downs_per_hour=config.max_scale_downs_per_hour,
    )


def _harmony_forecaster(
    series: Series, split: Split, delay_steps: int, config: BacktestConfig, reporter: Reporter
) -> tuple[Forecaster, str]:
    if config.model_path is not None:
        try:
            folder = config.model_path
            forecaster = Forecaster.load(folder.parent if folder.is_file() else folder)
        except (OSError, ValueError) as error:
            raise HarmonyError(f"--model {config.model_path}: cannot load ({error})") from None
        check_model(forecaster, series, delay_steps)
        return forecaster, f"forecaster loaded from {config.model_path}"
    model_config = forecaster_config_for(delay_steps, config.forecaster)
    reporter.stage(f"training the forecaster on the train part ({split.train_end} rows)", None)
    forecaster = train_on_history(series, split.train_end, model_config)
    return forecaster, (
        f"forecaster trained on rows 0..{split.train_end - 1} in "
        f"{forecaster.metadata.get('train_seconds', 0):.0f} s "
        f"({forecaster.metadata.get('epochs', '?')} epochs)"
    )


def prepare_trace(
    series: Series, config: BacktestConfig, reporter: Reporter | None = None
) -> PreparedTrace:
    """Split the trace and make every forecast the configured policies decide from."""
    reporter = reporter or QuietReporter()
    tune_share = (1.0 - config.train_fraction) / 2
    try:
        split = Split.of(len(series), config.train_fraction, tune_share)
    except ValueError as error:
        raise HarmonyError(f"trace {series.name!r}: {error}") from None
    delay_steps, rounding = delay_in_steps(config.provisioning_delay, series.step)
    notes = [split.describe(series.step_seconds / 3600)]
    shortest = min(split.tune_end - split.train_end, split.rows - split.tune_end)
    if shortest * config.sla < 1:
        notes.append(
            f"warning: the tune and test periods have {shortest} steps or fewer, under "
            f"1 / SLA = {1 / config.sla:.0f}: one short step already exceeds the SLA there; "
            "use a longer trace (or a shorter --step) for a meaningful comparison"
        )
    if rounding:
        notes.append(rounding)
    needed = forecasts_needed(config.policies)
    sources: dict[str, npt.NDArray[np.float32]] = {}
    forecaster: Forecaster | None = None
    harmony_kinds = sorted(needed & {"harmony", "harmony-gaussian"})
    if harmony_kinds:
        forecaster, note = _harmony_forecaster(series, split, delay_steps, config, reporter)
        notes.append(note)
        for kind in harmony_kinds:
            origins = len(series) - split.train_end
            advance = reporter.stage(f"forecasting {origins} origins ({kind})", origins)
            forecaster.network.use_flow(kind == "harmony")
            try:
                sources[kind] = forecast_origins(
                    forecaster,
                    series.values,
                    series.timestamps(),
                    split.train_end,
                    series.demand_index,
                    num_samples=config.num_samples,
                    seed=config.seed,
                    progress=advance,
                )
            finally:
                forecaster.network.use_flow(True)
    demand = series.values[:, series.demand_index]
    classical = sorted(needed - {"harmony", "harmony-gaussian"})
    if classical:
        from forecaster.classical import point_forecasts
    for source in classical:
        reporter.stage(f"forecasting with {source}", None)
        sources[source] = point_forecasts(
            source, demand, split.train_end, delay_steps + 1, series.step_seconds
        )[:, None]
    return PreparedTrace(series, split, delay_steps, forecaster, sources, notes)


def case_scenario(
    prepared: PreparedTrace, config: BacktestConfig, peak_replicas: int
) -> tuple[Scenario, float]:
    """The scenario of one pool size: demand and forecasts scaled by the train part's
    99.9th percentile; (scenario, factor)."""
    series, split = prepared.series, prepared.split
    factor = pool_factor(series, split.train_end, config.capacity_per_replica, peak_replicas)
    spec = pool_spec(
        config, peak_replicas, series.step_seconds, prepared.delay_steps, len(series.demand_index)
    )
    scaled = {name: array * np.float32(factor) for name, array in prepared.sources.items()}
    samples = scaled.pop("harmony", None)
    day_steps = math.ceil(86_400 / series.step_seconds)
    scenario = Scenario(
        name=series.name,
        demand=series.values[:, series.demand_index] * factor,
        start=series.start,
        step=series.step,
        decide_from=split.train_end,
        spec=spec,
        samples=samples,
        forecasts=scaled,
        # A week and a day of history: what the self-tuning buffer refits on.
        observation_window=max(config.observation_window, 8 * day_steps),
        test_from=split.tune_end,
    )
    return scenario, factor


def run_backtest(
    series: Series,
    config: BacktestConfig,
    reporter: Reporter | None = None,
    prepared: PreparedTrace | None = None,
) -> BacktestOutcome:
    """The deployable protocol on one trace at `config.peak_replicas` (and the frontier
    with `config.sweep`)."""
    reporter = reporter or QuietReporter()
    prepared = prepared or prepare_trace(series, config, reporter)
    peak = config.peak_replicas or defaults.PEAK_REPLICAS
    scenario, factor = case_scenario(prepared, config, peak)
    notes = [
        *prepared.notes,
        f"demand multiplied by {factor:.6g} so that the train part's {POOL_QUANTILE:g}th "
        f"percentile needs {peak} replicas of capacity {config.capacity_per_replica:g}",
    ]
    policies = ordered_policies(config.policies)

    advance = reporter.stage(
        f"replaying {len(policies)} polic{'y' if len(policies) == 1 else 'ies'}: each knob "
        "searched on tune, then run on test" + (" and searched there" if config.sweep else ""),
        len(policies),
    )
    from controller.tasks import evaluate_policies

    outcomes = evaluate_policies(
        scenario,
        policies,
        config.sla,
        frontier=config.sweep,
        redis_url=config.redis_url,
        on_done=lambda _outcome: advance(1),
    )
    case = CaseOutcome(scenario.name, peak, config.sla, {item.policy: item for item in outcomes})
    for message in notes:
        reporter.note(message)
    return BacktestOutcome(
        series=series,
        scenario=scenario,
        case=case,
        demand_scale=factor,
        forecaster=prepared.forecaster,
        notes=notes,
    )
