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

# What `harmony backtest` and the API's backtests accept at most: past these no pool is
# real, and the simulation's arithmetic or memory would overflow.
MAX_REPLICAS = 100_000
MAX_CAPACITY_PER_REPLICA = 1e9
MAX_SCALE = 1e9
MAX_PRICE_PER_REPLICA_HOUR = 1e6
MAX_SAMPLES = 10_000
MAX_SEED = 2**31 - 1
MAX_DURATION = dt.timedelta(days=1)  # the longest --step or --provisioning-delay
