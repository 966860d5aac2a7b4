"""A pool's recent resizes, as the churn limits of `decision.PoolSpec` read them.

The backtest's replay and the operator's cycle keep one ledger per pool and put its two
figures into each `PoolObservation`: the age of the newest replica (the last scale-up)
and the scale-downs of the trailing hour.
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from typing import Any

HOUR = dt.timedelta(hours=1)
#: The key of the ledger among a pool's saved policy states (`Pool.policy_state`).
CHURN_STATE = "churn"


class ChurnLedger:
    """When the pool last grew, and when it shrank within the trailing hour."""

    def __init__(self) -> None:
        self._last_scale_up: dt.datetime | None = None
        self._scale_downs: deque[dt.datetime] = deque()

    def record(self, at: dt.datetime, before: int, after: int) -> None:
        """One resize of the pool's desired count from `before` to `after` at `at`."""
        if after > before:
            self._last_scale_up = at
        elif after < before:
            self._scale_downs.append(at)

    def seconds_since_scale_up(self, now: dt.datetime) -> float | None:
        if self._last_scale_up is None:
            return None
        return (now - self._last_scale_up).total_seconds()

    def scale_downs_last_hour(self, now: dt.datetime) -> int:
        while self._scale_downs and now - self._scale_downs[0] >= HOUR:
            self._scale_downs.popleft()
        return sum(1 for at in self._scale_downs if at <= now)

    def to_dict(self) -> dict[str, Any]:
        return {
            "last_scale_up": None
            if self._last_scale_up is None
            else self._last_scale_up.isoformat(),
            "scale_downs": [at.isoformat() for at in self._scale_downs],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ChurnLedger:
        """The ledger `to_dict` saved; an empty one for None or a malformed document."""
        ledger = cls()
        if not isinstance(data, dict):
            return ledger
        try:
            last = data.get("last_scale_up")
            ledger._last_scale_up = None if last is None else dt.datetime.fromisoformat(last)
            ledger._scale_downs = deque(
                dt.datetime.fromisoformat(at) for at in data.get("scale_downs", [])
            )
        except (TypeError, ValueError):
            return cls()
        return ledger
