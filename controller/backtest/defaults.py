"""Defaults of `harmony backtest`, importable without torch (the CLI reads them at start)."""

from __future__ import annotations

import datetime as dt

# A pool of 8-GPU nodes whose peak needs 32 of them; GPU nodes decided every 5 minutes,
# usable 10 minutes after they are asked for.
PEAK_REPLICAS = 32
DECISION_STEP = dt.timedelta(minutes=5)
PROVISIONING_DELAY = dt.timedelta(minutes=10)
SLA = 0.01
TRAIN_FRACTION = 0.5
SAMPLES = 100
