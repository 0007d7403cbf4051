"""The `xiezuo` command line: run the platform and administer it."""

from __future__ import annotations

import importlib
import importlib.util
import sys

import typer

from services.cli import admin, deadletter, letters, operator, stack
from services.runtime.kafka_security import KafkaSettingsError
from services.runtime.settings import SERVICES, STANDALONE_SERVICES

app = typer.Typer(
    name="xiezuo",
    help="Xiezuo: township discipline-inspection collaboration zones.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
stack.register(app)
admin.register(app)
app.add_typer(deadletter.app, name="dead-letter")
app.add_typer(letters.app, name="letters")
operator.register(app)

# A service's own operator commands live next to it (services/<service>/cli.py, a Typer app
# named `app`) and appear here as `xiezuo <service> ...`.
for _service in SERVICES + STANDALONE_SERVICES:
    if importlib.util.find_spec(f"services.{_service}.cli") is not None:
        app.add_typer(importlib.import_module(f"services.{_service}.cli").app, name=_service)


def main() -> None:
    """Entry point of the `xiezuo` console script."""
    try:
        app()
    except KafkaSettingsError as exc:
        # A misconfiguration, not a bug: one line naming the setting, no traceback.
        print(f"xiezuo: invalid Kafka settings: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
