"""The one error the decision package raises for input it cannot use."""

from __future__ import annotations


class InvalidDecisionInput(ValueError):
    """A pool specification, observation, sample array or saved state the engine cannot use.

    The message names the field and the fix; the controller turns it into a one-line error
    (decision/ imports nothing from controller/, hence a ValueError rather than HarmonyError).
    """
