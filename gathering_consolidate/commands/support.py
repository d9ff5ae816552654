"""What every command shares: the one-line error and SIGTERM handling (used by `cli.py` too)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import typer

EXIT_ERROR = 2


def fail(message: str) -> typer.Exit:
    """Print `error: message` on stderr and return the exit (code 2) to raise. The message is
    user text (paths, config keys such as `[tool.gathering-consolidate]`), not markup; soft wrap
    keeps long paths whole. rich is imported here, not with the module: a run that prints no
    error (the cached pre-commit audit) does not load it."""
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True, highlight=False, soft_wrap=True).print(
        f"[bold red]error:[/] {escape(message)}"
    )
    return typer.Exit(EXIT_ERROR)


@contextlib.contextmanager
def sigterm_exits() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C (exit 143) instead of killing this process outright, so
    workers and child processes are stopped rather than orphaned."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminated(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
