"""The forecaster's settings: one frozen dataclass, saved with every model artifact."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

HeadKind = Literal["flow", "gaussian"]
FlowTransformKind = Literal["spline", "affine"]
FLOW_TRANSFORMS = ("spline", "affine")
FloorKind = Literal["zero_if_nonnegative", "training_min", "none"]
FLOOR_KINDS = ("zero_if_nonnegative", "training_min", "none")
CouplingMaskKind = Literal["checkerboard", "alternating"]
COUPLING_MASKS = ("checkerboard", "alternating")


_SETTINGS_BEFORE_THEY_EXISTED: dict[str, Any] = {
    "flow_transform": "spline",
    "coupling_mask": "alternating",
    "demand_reads_all": False,
}


@dataclass(frozen=True)
class ForecasterConfig:
    """Shape of the windows, size of the model and how it is trained.

    Defaults are small (a few hundred thousand parameters) so that one pool trains on two
    CPU cores in about a minute.
    """

    context_length: int = 144
    horizon: int = 1
    # Model size.
    d_model: int = 64
    num_heads: int = 4
    feedforward: int = 128
    layers_per_level: int = 1
    # After the cascade, one more stage in which the level-1 (demand) tokens attend to every
    # token, so that a leading indicator at a finer level can move the demand forecast
    # (off by default: docs/decisions/0006).
    demand_reads_all: bool = False
    dropout: float = 0.0
    context_features: int = 64
    # Head: "flow" is the conditional normalizing flow, "gaussian" its ablation.
    head: HeadKind = "flow"
    # Coupling layers of the flow: rational-quadratic splines or affine (faster sampling);
    # why spline is the default: docs/decisions/0003.
    flow_transform: FlowTransformKind = "spline"
    flow_layers: int = 4
    # Which half of the joint vector (horizon step h, indicator n) each coupling layer
    # transforms: "checkerboard" splits by the parity of h + n, so every layer couples
    # steps of one indicator with each other; "alternating" splits by the parity of the
    # flat position h * N + n, which for an even N is a split by indicator (the default
    # until measured otherwise: docs/decisions/0006).
    coupling_mask: CouplingMaskKind = "alternating"
    flow_hidden: int = 64
    flow_bins: int = 8
    flow_tail_bound: float = 6.0
    min_scale: float = 1e-3
    # Lowest value a sample may take, per indicator: demand and usage are never negative,
    # and a flow or Gaussian on a series that sits at zero half of the time otherwise puts
    # much of its mass below zero. "zero_if_nonnegative": zero for indicators whose
    # training data never go below it; "training_min": the training minimum (wrong when
    # the level later falls below it); "none": raw samples.
    sample_floor: FloorKind = "zero_if_nonnegative"
    # Training targets on the floor are spread uniformly over this many window standard
    # deviations below it (they are censored values; see `ForecasterModule`); 0: kept.
    floor_band: float = 0.5
    # Per-window normalisation: variance floor in units of the global scale.
    revin_variance_floor: float = 1e-2
    # Calendar tokens (hour of day, day of week as sin/cos) at this hierarchy level.
    calendar: bool = True
    calendar_level: int = 1
    # Training.
    validation_fraction: float = 0.125
    batch_size: int = 128
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    max_epochs: int = 60
    patience: int = 6
    # Early stopping watches validation CRPS (from `validation_samples` draws) or NLL.
    early_stopping: Literal["crps", "nll"] = "crps"
    validation_samples: int = 32
    max_train_seconds: float | None = 85.0
    windows_per_epoch: int | None = 2048
    seed: int = 0
    # Intra-op threads while training; small batches run fastest on one (spin-waiting
    # threads on a shared machine cost more than they give). None leaves torch's setting.
    num_threads: int | None = 1
    accelerator: str = "auto"

    def __post_init__(self) -> None:
        checks: list[tuple[bool, str]] = [
            (self.context_length >= 2, "context_length must be >= 2"),
            (self.horizon >= 1, "horizon must be >= 1"),
            (self.d_model % self.num_heads == 0, "d_model must be a multiple of num_heads"),
            (self.head in ("flow", "gaussian"), "head must be 'flow' or 'gaussian'"),
            (0.0 < self.validation_fraction < 0.5, "validation_fraction must be in (0, 0.5)"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.max_epochs >= 1, "max_epochs must be >= 1"),
            (self.flow_layers >= 1, "flow_layers must be >= 1"),
            (
                self.flow_transform in FLOW_TRANSFORMS,
                f"flow_transform must be one of {FLOW_TRANSFORMS}",
            ),
            (self.early_stopping in ("crps", "nll"), "early_stopping must be 'crps' or 'nll'"),
            (
                self.coupling_mask in COUPLING_MASKS,
                f"coupling_mask must be one of {COUPLING_MASKS}",
            ),
            (self.sample_floor in FLOOR_KINDS, f"sample_floor must be one of {FLOOR_KINDS}"),
            (self.floor_band >= 0.0, "floor_band must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"ForecasterConfig: {message}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ForecasterConfig:
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"ForecasterConfig: unknown settings {unknown}")
        # Artifacts saved before a setting existed were trained as its value back then.
        return cls(**{**_SETTINGS_BEFORE_THEY_EXISTED, **data})

    def replace(self, **changes: Any) -> ForecasterConfig:
        return dataclasses.replace(self, **changes)
