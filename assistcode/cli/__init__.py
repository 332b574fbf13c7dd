"""The command line: a thin layer over the Python API. Commands parse, call one library function, print."""
from __future__ import annotations

import sys

import click

from ..errors import AssistcodeError
from .base import cli

# The command modules register their commands on ``cli`` when imported; ``cli`` imports only the one a command needs
# (see ``base.LazyGroup``), so startup stays cheap.


def main(argv: list[str] | None = None) -> int:
    """Entry point: library errors become one line on stderr and exit status 2 for bad input."""
    try:
        status = cli.main(args=argv, prog_name="assistcode", standalone_mode=False)
    except AssistcodeError as exc:
        click.echo(f"assistcode: error: {exc}", err=True)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("assistcode: interrupted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("assistcode: interrupted", err=True)
        return 130
    # a command's click.exceptions.Exit(N) comes back as N; a command's own return value is not a status
    return status if type(status) is int else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
