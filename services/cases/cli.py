"""Operator commands of cases: `xiezuo cases rules validate FILE` (and `xiezuo rules …`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from services.cases.domain.rulebook import RuleSetInvalid, load_rule_set

app = typer.Typer(help="Cases: clue and case workflow.", no_args_is_help=True)
rules_app = typer.Typer(
    help="County rule sets (stages, approvals, time limits).", no_args_is_help=True
)
app.add_typer(rules_app, name="rules")


@rules_app.command("validate")
def validate(
    file: Annotated[
        Path, typer.Argument(help="A rule-set YAML file.", exists=True, dir_okay=False)
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Check a county's rule-set file; exit 1 listing every problem."""
    try:
        rules = load_rule_set(file.read_text(encoding="utf-8"))
    except RuleSetInvalid as invalid:
        if as_json:
            typer.echo(json.dumps({"ok": False, "problems": invalid.problems}))
        else:
            for problem in invalid.problems:
                typer.echo(f"✗ {problem}", err=True)
        raise typer.Exit(1) from None
    summary = {
        "ok": True,
        "version": rules.version,
        "effective_from": rules.effective_from.isoformat(),
        "stages": len(rules.stages),
        "transitions": len(rules.transitions),
    }
    if as_json:
        typer.echo(json.dumps(summary))
    else:
        typer.echo(f"✓ {rules.version} effective {rules.effective_from.isoformat()}: valid")
