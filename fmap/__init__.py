"""The fmap command-line interface (typer), on top of dsl, compiler and runtime."""

__version__ = "0.1.0"
