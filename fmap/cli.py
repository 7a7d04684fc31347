"""The `fmap` command line."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="fmap",
    help="Compile and run CRM data migrations written in the .fmap language.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals hold tokens and patient data
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """fmap: mapping-DSL compiler and runtime for CRM data migrations."""


def main() -> None:
    app()
