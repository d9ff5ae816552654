"""Serve an ASGI app under uvicorn with blockbuster recording blocking calls on the event loop.

    python _blockbuster_boot.py MODULE:ATTR PORT RECORD_FILE

Started by `verify --detect-blocking` with the TARGET's interpreter (it needs `uvicorn` and
`blockbuster` there; nothing of the toolkit is imported). Unlike blockbuster's default, a
blocking call does not raise: its name and the stack that made it are appended to RECORD_FILE
(one JSON object a line) and the call then runs, so the app behaves as it does in production
while every blocking site is listed. Besides blockbuster's own table (time.sleep, file and
socket I/O, locks, ...) the synchronous entry points of psycopg 3 and psycopg2 are watched: their
waits happen in C, where blockbuster's socket hooks do not see them.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import traceback


def main() -> None:
    app, port, record = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    sys.path.insert(0, os.getcwd())  # as `uvicorn --app-dir .` does
    import blockbuster.blockbuster as bbm
    import uvicorn

    guard = threading.local()
    original_wrap = bbm._wrap_blocking

    def write(func_name: str) -> None:
        guard.busy = True
        try:
            stack = [(f.filename, f.lineno, f.name) for f in traceback.extract_stack()[:-2]]
            with open(record, "a", encoding="utf-8") as handle:
                handle.write(json.dumps({"call": func_name, "stack": stack}) + "\n")
        finally:
            guard.busy = False

    def recording(modules, excluded, func, func_name, *rest):
        checked = original_wrap(modules, excluded, func, func_name, *rest)

        def wrapper(*args, **kwargs):
            if getattr(guard, "busy", False):
                return func(*args, **kwargs)
            try:
                return checked(*args, **kwargs)
            except bbm.BlockingError:
                write(func_name)
                return func(*args, **kwargs)

        return wrapper

    bbm._wrap_blocking = recording
    buster = bbm.BlockBuster()
    extra = []
    try:
        import psycopg

        extra += [(psycopg.Cursor, n) for n in ("execute", "executemany", "copy")]
        extra += [(psycopg.Connection, n) for n in ("execute", "commit", "rollback")]
        extra += [(psycopg.Connection, "connect")]
    except ImportError:
        pass
    try:
        import psycopg2.extensions as p2

        extra += [(p2.cursor, "execute"), (p2.cursor, "executemany")]
    except ImportError:
        pass
    for owner, name in extra:
        if hasattr(owner, name):
            key = f"{owner.__module__}.{owner.__qualname__}.{name}"
            buster.functions[key] = bbm.BlockBusterFunction(owner, name)
    buster.activate()
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
