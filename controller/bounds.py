"""Range checks of option values that name the option and the range in one line."""

from __future__ import annotations

from controller.errors import BadUsage


def require_between(
    option: str, value: float, low: float, high: float, *, above_low: bool = False
) -> None:
    """BadUsage unless `low <= value <= high` (`low < value` with `above_low`).

    NaN and the infinities fail whatever the bounds, as long as `high` is finite.
    """
    fits_low = value > low if above_low else value >= low
    if fits_low and value <= high:
        return
    lower = f"above {_shown(low)}" if above_low else f"from {_shown(low)}"
    raise BadUsage(
        f"{option} {_shown(value)} is out of range; give a number {lower} to {_shown(high)}"
    )


def _shown(number: float) -> str:
    return str(number) if isinstance(number, int) else f"{number:g}"
