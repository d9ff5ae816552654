"""The `gathering-consolidate` command: an `audit` run again on unchanged inputs is replayed
(replay.py) before the command line is built; anything else runs the command line (cli.py)."""

import sys


def main() -> None:
    from .replay import Command

    command = Command.of(sys.argv[1:])
    if command is not None and (code := command.replay()) is not None:
        sys.exit(code)
    from .cli import main as run

    if command is None:
        run()
        return
    with command.keeping():
        run()
