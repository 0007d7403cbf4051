"""The `xiezuo` command line: run the platform and administer it."""

from __future__ import annotations

import typer

from services.cli import admin, stack

app = typer.Typer(
    name="xiezuo",
    help="Xiezuo: township discipline-inspection collaboration zones.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
stack.register(app)
admin.register(app)


def main() -> None:
    """Entry point of the `xiezuo` console script."""
    app()


if __name__ == "__main__":
    main()
