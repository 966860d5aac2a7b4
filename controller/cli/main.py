"""The `harmony` command: every subcommand is registered here, in one place."""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version

import typer
from pydantic import ValidationError
from rich.console import Console
from sqlalchemy.exc import OperationalError

from controller.errors import HarmonyError
from controller.logs import configure_logging
from controller.settings import describe_settings_error, get_settings

try:  # typer >= 0.25 vendors its own click; its exceptions are the ones raised
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - older typer on plain click
    from click import exceptions as click_exceptions  # type: ignore[no-redef]

app = typer.Typer(
    name="harmony",
    help="Forecast-driven Bayesian autoscaling for Kubernetes GPU node pools.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

err_console = Console(stderr=True, highlight=False, soft_wrap=True)


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
    try:
        command.main(args=argv, prog_name="harmony", standalone_mode=False)
    except typer.Exit as done:
        return int(done.exit_code or 0)
    except typer.Abort:
        err_console.print("error: aborted")
        return 1
    except click_exceptions.NoArgsIsHelpError as shown:
        if shown.ctx is not None:
            typer.echo(shown.ctx.get_help())
        return 0
    except click_exceptions.UsageError as error:
        where = f" (see `{error.ctx.command_path} --help`)" if error.ctx else ""
        err_console.print(f"error: {error.format_message()}{where}")
        return 2
    except HarmonyError as error:
        err_console.print(f"error: {error}")
        return error.exit_code
    except ValidationError as error:
        err_console.print(f"error: {describe_settings_error(error)}")
        return 1
    except OperationalError as error:
        reason = str(error.orig or error).strip().splitlines()[0]
        err_console.print(
            f"error: database error ({reason}); check HARMONY_DATABASE_URL and the server"
        )
        return 1
    except KeyboardInterrupt:
        err_console.print("error: interrupted")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
