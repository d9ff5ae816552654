"""Score the audit on the hand-labelled corpus (issue 11): precision, recall and agreement per
family and project, with the issue's targets beside each figure.

    .venv/bin/python scripts/corpus_scores.py [--json] [--project NAME] [--corpus DIR]

Extracts `../shared/corpus` into a temporary folder (or reads an extracted `--corpus DIR`),
audits each project in process without the cache, and matches the findings to the labels in
`tests/corpus_labels/` (rules in its README). Exit code 0 whatever the figures: the test
`tests/test_corpus_scores.py` is what asserts them.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests import corpus_scoring as scoring


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--project",
        choices=scoring.PROJECTS,
        action="append",
        help="score only this project (repeatable)",
    )
    parser.add_argument(
        "--corpus",
        type=Path,
        help="an already extracted corpus (default: extract into a temp folder)",
    )
    args = parser.parse_args(argv)
    projects = args.project or list(scoring.PROJECTS)
    if args.corpus is None and not scoring.corpus_available():
        print(f"corpus not found: {scoring.CORPUS}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="gc-corpus-") as tmp:
        base = args.corpus or scoring.extract(Path(tmp))
        results = []
        for project in projects:
            started = time.monotonic()
            result = scoring.run_audit(base / project)
            scores = scoring.score_project(project, base / project, result)
            scores["audit_seconds"] = round(time.monotonic() - started, 1)
            results.append(scores)
    if args.json:
        print(json.dumps(results, indent=2, sort_keys=True))
    else:
        print(scoring.render(results))
        print("audit time: " + ", ".join(f"{s['project']} {s['audit_seconds']} s" for s in results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
