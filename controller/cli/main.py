"""The `harmony` command: every subcommand is registered here, in one place."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import typer
from pydantic import ValidationError
from rich.console import Console
from sqlalchemy.exc import OperationalError
from typer.core import TyperGroup

from controller.errors import HarmonyError
from controller.logs import configure_logging
from controller.settings import describe_settings_error, get_settings

try:  # typer >= 0.25 vendors its own click; its exceptions are the ones raised
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - older typer on plain click
    from click import exceptions as click_exceptions  # type: ignore[no-redef]

# Error lines quote what the user typed: no markup, so `[/x]` is text, not a rich tag.
err_console = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class HarmonyGroup(TyperGroup):
    """The root command: every error is one line on stderr and an exit code (2 for bad
    usage, 1 for failures), whether the console script or a test's CliRunner calls it."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> int:
        def invoke() -> object:
            return super(HarmonyGroup, self).main(
                args, prog_name, complete_var, standalone_mode=False, **extra
            )

        code = _exit_code(invoke)
        if standalone_mode:
            sys.exit(code)
        return code


app = typer.Typer(
    name="harmony",
    help="Forecast-driven Bayesian autoscaling for Kubernetes GPU node pools.",
    cls=HarmonyGroup,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def package_version() -> str:
    try:
        return version("harmony-autoscaler")
    except PackageNotFoundError:
        return "0+unknown"


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"harmony {package_version()}")
        raise typer.Exit()


@app.callback()
def root(
    show_version: bool = typer.Option(
        False, "--version", callback=_show_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """Forecast-driven Bayesian autoscaling for Kubernetes GPU node pools."""
    configure_logging(get_settings())


def _register() -> None:
    from controller.cli import api, backtest, db, demo, fetch, operator, trace, train, worker

    app.add_typer(db.app, name="db")
    app.add_typer(trace.app, name="trace")
    fetch.register(trace.app)
    backtest.register(app)
    demo.register(app)
    train.register(app)
    app.command(name="api")(api.api)
    app.command(name="worker")(worker.worker)
    app.command(name="operator")(operator.operator)


_register()


def main(argv: list[str] | None = None) -> int:
    """Entry point: one clear line on error, exit 2 for bad usage and 1 for failures."""
    command = typer.main.get_command(app)
    return int(command.main(args=argv, prog_name="harmony", standalone_mode=False))


def _report(message: str) -> None:
    """One line on stderr; control characters the user typed (a newline, an escape
    sequence) are shown escaped rather than acted on by the terminal."""
    err_console.print(_CONTROL.sub(lambda found: repr(found.group())[1:-1], message))


def _exit_code(invoke: Callable[[], object]) -> int:
    """Runs the command line; an error becomes one line on stderr and its exit code."""
    try:
        returned = invoke()
    except typer.Exit as done:
        return int(done.exit_code or 0)
    except typer.Abort:
        _report("error: aborted")
        return 1
    except click_exceptions.NoArgsIsHelpError as shown:
        if shown.ctx is not None:
            typer.echo(shown.ctx.get_help())
        return 0
    except click_exceptions.UsageError as error:
        where = f" (see `{error.ctx.command_path} --help`)" if error.ctx else ""
        _report(f"error: {error.format_message()}{where}")
        return 2
    except click_exceptions.ClickException as error:
        _report(f"error: {error.format_message()}")
        return error.exit_code
    except HarmonyError as error:
        _report(f"error: {error}")
        return error.exit_code
    except ValidationError as error:
        _report(f"error: {describe_settings_error(error)}")
        return 1
    except OperationalError as error:
        reason = str(error.orig or error).strip().splitlines()[0]
        _report(f"error: database error ({reason}); check HARMONY_DATABASE_URL and the server")
        return 1
    except KeyboardInterrupt:
        _report("error: interrupted")
        return 130
    # without standalone mode, click returns the code of a `typer.Exit` (commands return None)
    return returned if isinstance(returned, int) and not isinstance(returned, bool) else 0


if __name__ == "__main__":
    sys.exit(main())
