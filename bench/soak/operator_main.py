"""`harmony operator` for the soak, without the rest of the `harmony` command.

`python -m controller.cli.main` imports every subcommand first (pandas, scipy, the trace
readers): tens of seconds of CPU per operator on a loaded machine, paid at the start and
at every leader kill, and nothing the operator runs. This runs the same `operator`
function with the same options and the same logging setup.
"""

from __future__ import annotations

import typer

from controller.cli.operator import operator
from controller.logs import configure_logging
from controller.settings import get_settings


def main() -> None:
    configure_logging(get_settings())
    typer.run(operator)


if __name__ == "__main__":
    main()
