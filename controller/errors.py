"""Errors meant for people: the CLI prints them as one line, without a traceback."""

from __future__ import annotations


class HarmonyError(Exception):
    """A failure a user can act on; the message names the setting, file or field and the fix.

    The CLI exits with code 1 on these.
    """

    exit_code = 1


class BadUsage(HarmonyError):
    """The command line itself is wrong (unknown option value, missing argument): exit 2."""

    exit_code = 2
