"""Training with PyTorch Lightning: windows in a DataModule, likelihood in a LightningModule."""

from __future__ import annotations

import copy
import logging
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, EarlyStopping, RichProgressBar
from torch import Tensor
from torch.utils.data import DataLoader, RandomSampler, SequentialSampler

from forecaster.base import sample_floor_of
from forecaster.config import ForecasterConfig
from forecaster.model import Forecaster
from forecaster.network import ForecastNetwork
from forecaster.scoring import crps_torch
from forecaster.windows import (
    Scaler,
    calendar_features,
    infer_step_seconds,
    split_windows,
)

Batch = tuple[Tensor, Tensor, Tensor]
_NOISE = (".*does not have many workers.*", ".*GPU available but not used.*", ".*LeafSpec.*")
_QUIET_LOGGERS = ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning")


class WindowDataModule(pl.LightningDataModule):
    """Training and validation windows of one scaled series, gathered per batch."""

    def __init__(
        self,
        scaled: npt.NDArray[np.float32],
        calendar: npt.NDArray[np.float32],
        train_starts: npt.NDArray[np.int64],
        validation_starts: npt.NDArray[np.int64],
        config: ForecasterConfig,
    ) -> None:
        super().__init__()
        self.values = torch.as_tensor(scaled)
        self.calendar = torch.as_tensor(calendar)
        self.train_starts = torch.as_tensor(train_starts)
        self.validation_starts = torch.as_tensor(validation_starts)
        self.config = config
        self.offsets = torch.arange(config.context_length + config.horizon)

    def gather(self, starts: list[Tensor]) -> Batch:
        rows = torch.stack(starts).unsqueeze(1) + self.offsets.unsqueeze(0)
        window = self.values[rows]
        length = self.config.context_length
        return window[:, :length], self.calendar[rows], window[:, length:]

    def train_dataloader(self) -> DataLoader[Batch]:
        generator = torch.Generator().manual_seed(self.config.seed)
        count = len(self.train_starts)
        per_epoch = min(count, self.config.windows_per_epoch or count)
        sampler = RandomSampler(
            range(count), replacement=False, num_samples=per_epoch, generator=generator
        )
        return DataLoader(
            list(self.train_starts),  # type: ignore[arg-type]
            batch_size=self.config.batch_size,
            sampler=sampler,
            collate_fn=self.gather,
            drop_last=per_epoch > self.config.batch_size,
        )

    def val_dataloader(self) -> DataLoader[Batch]:
        starts = list(self.validation_starts)
        return DataLoader(
            starts,  # type: ignore[arg-type]
            batch_size=256,
            sampler=SequentialSampler(starts),
            collate_fn=self.gather,
        )


class ForecasterModule(pl.LightningModule):
    """The network and its loss: negative log-likelihood per value of the joint vector."""

    def __init__(self, network: ForecastNetwork, config: ForecasterConfig) -> None:
        super().__init__()
        self.network = network
        self.config = config

    def nll(self, batch: Batch, dequantize: bool = False) -> Tensor:
        context, calendar, target = batch
        prediction = self.network(context, calendar)
        if dequantize:
            target = self.spread_floor_targets(target, prediction.window_std)
        loss: Tensor = -self.network.log_prob(prediction, target).mean() / self.network.features
        return loss

    def spread_floor_targets(self, target: Tensor, window_std: Tensor) -> Tensor:
        """Targets sitting on the floor, moved uniformly into the band just below it.

        A value at the floor is censored: the truth is "at or below it", and the sample
        clamp turns whatever mass lies below into that point. Fitted as exact values, the
        many zeros of idle demand make the likelihood chase a spike; spread over a band
        `floor_band` window deviations deep, they teach the mass of the point instead.
        """
        depth = self.config.floor_band
        floor = self.network.get_buffer("floor")
        if depth <= 0 or not torch.isfinite(floor).any():
            return target
        # Targets and floor went through the same float32 scaling: equal values stay equal.
        at_floor = target <= floor + 1e-5
        band = torch.rand_like(target) * depth * window_std.unsqueeze(1)
        return torch.where(at_floor, target - band, target)

    def training_step(self, batch: Batch, batch_index: int) -> Tensor:
        loss = self.nll(batch, dequantize=True)
        self.log("train_nll", loss, prog_bar=True, batch_size=batch[0].shape[0])
        return loss

    def validation_step(self, batch: Batch, batch_index: int) -> None:
        context, calendar, target = batch
        size = context.shape[0]
        prediction = self.network(context, calendar)
        nll = -self.network.log_prob(prediction, target).mean() / self.network.features
        self.log("val_nll", nll, prog_bar=True, batch_size=size)
        if self.config.early_stopping == "crps":
            generator = torch.Generator(device=context.device)
            generator.manual_seed(self.config.seed + batch_index)
            draws = self.network.sample(prediction, self.config.validation_samples, generator)
            score = crps_torch(draws, target).mean()
            self.log("val_crps", score, prog_bar=True, batch_size=size)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(
            [parameter for parameter in self.network.parameters() if parameter.requires_grad],
            lr=self.config.learning_rate,
            weight_decay=self.config.weight_decay,
        )


class KeepBestWeights(Callback):
    """Remembers the weights of the epoch with the best validation score (in memory)."""

    def __init__(self, monitor: str) -> None:
        self.monitor = monitor
        self.best_score = float("inf")
        self.best_epoch = -1
        self.best_state: dict[str, Tensor] | None = None
        self.epochs = 0

    def on_validation_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        score = float(trainer.callback_metrics.get(self.monitor, torch.tensor(float("inf"))))
        self.epochs += 1
        if np.isfinite(score) and score < self.best_score:
            self.best_score = score
            self.best_epoch = self.epochs - 1
            self.best_state = copy.deepcopy(module.state_dict())


def _check_inputs(
    values: npt.NDArray[np.float64], timestamps: npt.NDArray[np.float64], levels: Sequence[int]
) -> None:
    if values.ndim != 2:
        raise ValueError(f"values must be [T, N], got shape {values.shape}")
    if timestamps.shape != (values.shape[0],):
        raise ValueError(f"timestamps must be [{values.shape[0]}], got shape {timestamps.shape}")
    if len(levels) != values.shape[1]:
        raise ValueError(f"{len(levels)} levels given for {values.shape[1]} indicators")
    if any(int(level) < 1 for level in levels):
        raise ValueError(f"hierarchy levels must be >= 1, got {list(levels)}")


def train_forecaster(
    values: npt.ArrayLike,
    timestamps: npt.ArrayLike,
    levels: Sequence[int],
    config: ForecasterConfig | None = None,
    *,
    names: Sequence[str] | None = None,
    progress: bool = False,
    callbacks: Sequence[Callback] = (),
) -> Forecaster:
    """Train on `values [T, N]` (NaN = gap) at `timestamps [T]` (unix seconds, regular grid).

    The last `validation_fraction` of the rows are validation windows for early stopping;
    the scaler is fitted on the rows before them only.
    """
    config = config or ForecasterConfig()
    data = np.asarray(values, dtype=np.float64)
    times = np.asarray(timestamps, dtype=np.float64)
    _check_inputs(data, times, levels)
    if names is not None and len(names) != data.shape[1]:
        raise ValueError(f"{len(names)} names given for {data.shape[1]} indicators")
    step_seconds = infer_step_seconds(times)
    split = split_windows(data, config.context_length, config.horizon, config.validation_fraction)
    if len(split.train_starts) == 0 or len(split.validation_starts) == 0:
        raise ValueError("no complete training or validation window: too many gaps in targets")
    scaler = Scaler.fit(data[: split.train_rows])
    threads_before = torch.get_num_threads()
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    pl.seed_everything(config.seed, workers=True, verbose=False)
    network = ForecastNetwork(config, list(levels))
    floor = sample_floor_of(data, config.sample_floor)
    network.set_floor(torch.as_tensor(scaler.transform(floor), dtype=torch.float32))
    module = ForecasterModule(network, config)
    datamodule = WindowDataModule(
        scaler.transform(data).astype(np.float32),
        calendar_features(times).astype(np.float32),
        split.train_starts,
        split.validation_starts,
        config,
    )
    monitor = f"val_{config.early_stopping}"
    best = KeepBestWeights(monitor)
    previous_levels = _quiet_lightning(not progress)
    started = time.perf_counter()
    try:
        for phase in _phases(config):
            network.use_flow(phase.use_flow)
            remaining = None
            if config.max_train_seconds is not None:
                used = time.perf_counter() - started
                remaining = max(1.0, config.max_train_seconds * phase.time_share - used)
            trainer = _trainer(config, best, remaining, progress, callbacks)
            with warnings.catch_warnings():
                for message in _NOISE:
                    warnings.filterwarnings("ignore", message=message)
                trainer.fit(module, datamodule=datamodule)
            if best.best_state is not None:
                module.load_state_dict(best.best_state)
    finally:
        network.use_flow(True)
        _restore_loggers(previous_levels)
        torch.set_num_threads(threads_before)
    train_seconds = time.perf_counter() - started
    network.cpu().eval()
    spread = calibrate_spread(network, datamodule, config)
    metadata: dict[str, Any] = {
        "train_seconds": round(train_seconds, 3),
        "step_seconds": step_seconds,
        "epochs": best.epochs,
        "best_epoch": best.best_epoch,
        "spread": [[round(value, 3) for value in step] for step in spread],
        monitor: best.best_score,
        "train_windows": len(split.train_starts),
        "validation_windows": len(split.validation_starts),
        "data_start": float(times[0]),
        "data_end": float(times[-1]),
    }
    return Forecaster(
        config=config,
        levels=list(levels),
        scaler=scaler,
        step_seconds=step_seconds,
        network=network,
        names=names,
        metadata=metadata,
        floor=floor,
    )


SPREAD_GRID = (0.7, 0.8, 0.9, 1.0, 1.1, 1.25, 1.4, 1.6, 1.8, 2.0, 2.5, 3.0)


def calibrate_spread(
    network: ForecastNetwork, datamodule: WindowDataModule, config: ForecasterConfig
) -> list[list[float]]:
    """Widen (or narrow) the predictive spread of each horizon step and indicator to its
    best validation CRPS; returns the factors `[H][N]`.

    Samples are drawn once; the deviation of each from the Gaussian projection's centre is
    scaled by each factor of `SPREAD_GRID` and then clamped at the floor, as `sample` does,
    and each (step, indicator) keeps the factor with the lowest CRPS over the validation
    windows. Guards against the under-dispersion that early stopping leaves when training
    stops before the scales have settled, which grows with the lead time.
    """
    generator = torch.Generator().manual_seed(config.seed)
    scores = torch.zeros(len(SPREAD_GRID), network.horizon, network.num_indicators)
    with torch.no_grad():
        for batch in datamodule.val_dataloader():
            context, calendar, target = batch
            prediction = network(context, calendar)
            draws = network.sample(prediction, config.validation_samples, generator, clamp=False)
            centre = (
                prediction.window_centre.unsqueeze(1)
                + prediction.window_std.unsqueeze(1) * prediction.loc
            ).unsqueeze(1)
            for index, factor in enumerate(SPREAD_GRID):
                widened = network.clamp(centre + factor * (draws - centre))
                scores[index] += crps_torch(widened, target).sum(dim=0)
    best = torch.tensor(SPREAD_GRID)[scores.argmin(dim=0)]
    network.get_buffer("spread").copy_(best)
    return [[float(value) for value in step] for step in best]


@dataclass(frozen=True)
class _Phase:
    use_flow: bool
    time_share: float  # of max_train_seconds, counted from the start of training


def _phases(config: ForecasterConfig) -> list[_Phase]:
    """The flow head first trains its Gaussian base with the flow off (it starts as the
    identity), then everything together; the best validation weights across both phases
    are kept, so the flow is used only where it beats its own Gaussian base."""
    if config.head == "flow":
        return [_Phase(use_flow=False, time_share=0.5), _Phase(use_flow=True, time_share=1.0)]
    return [_Phase(use_flow=True, time_share=1.0)]


def _trainer(
    config: ForecasterConfig,
    best: KeepBestWeights,
    max_seconds: float | None,
    progress: bool,
    callbacks: Sequence[Callback],
) -> pl.Trainer:
    on_gpu = config.accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
    all_callbacks: list[Callback] = [
        EarlyStopping(monitor=best.monitor, patience=config.patience, mode="min"),
        best,
        *callbacks,
    ]
    if progress:
        all_callbacks.append(RichProgressBar())
    return pl.Trainer(
        max_epochs=config.max_epochs,
        max_time=None if max_seconds is None else {"seconds": max(1, int(max_seconds))},
        accelerator="gpu" if on_gpu else "cpu",
        devices=1,
        deterministic=not on_gpu,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=progress,
        gradient_clip_val=1.0,
        callbacks=all_callbacks,
        num_sanity_val_steps=0,
    )


def _quiet_lightning(quiet: bool) -> dict[str, int]:
    previous: dict[str, int] = {}
    if quiet:
        for name in _QUIET_LOGGERS:
            logger = logging.getLogger(name)
            previous[name] = logger.level
            logger.setLevel(logging.WARNING)
    return previous


def _restore_loggers(previous: dict[str, int]) -> None:
    for name, level in previous.items():
        logging.getLogger(name).setLevel(level)
