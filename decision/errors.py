"""The one error the decision package raises for input it cannot use."""

from __future__ import annotations

from typing import Any


class InvalidDecisionInput(ValueError):
    """A pool specification, observation, sample array or saved state the engine cannot use.

    The message names the field and the fix; the controller turns it into a one-line error
    (decision/ imports nothing from controller/, hence a ValueError rather than HarmonyError).
    """


def require_own_state(state: dict[str, Any], policy_name: str) -> None:
    """Refuse saved state that another policy wrote (every `load_state` starts here)."""
    if state.get("policy") != policy_name:
        raise InvalidDecisionInput(
            f"cannot load state of policy {state.get('policy')!r} into {policy_name!r}"
        )
