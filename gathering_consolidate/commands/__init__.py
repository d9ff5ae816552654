"""Command groups beside the core ones in `cli.py`: each module exposes `register(app)`, adds its
typer commands to the main app, and keeps heavy imports inside the command functions (every
invocation, the pre-commit hook's included, imports all of them). Like `cli.py`, these modules
build inputs, call one library function and render the result; nothing below them prints."""

from __future__ import annotations

import importlib

import typer

GROUPS = ("tests", "schema", "pipelines", "verify", "run", "lintguard")


def register_all(app: typer.Typer) -> None:
    for name in GROUPS:
        importlib.import_module(f"{__name__}.{name}").register(app)
