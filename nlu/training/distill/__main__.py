"""``python -m nlu.training.distill [teacher|student|ensemble|all] [--work DIR] [--out DIR]``.

Training dependencies: requirements-train.txt. ``all`` = teacher then student (the student
stage ends by training the linear model into the artifact: ``ensemble`` redoes only that).
"""

from __future__ import annotations

import argparse
import logging
import sys

from nlu.training.distill.pipeline import DEFAULT_OUT, DEFAULT_WORK, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nlu.training.distill")
    parser.add_argument(
        "stage", choices=("teacher", "student", "ensemble", "all"), default="all", nargs="?"
    )
    parser.add_argument("--work", default=str(DEFAULT_WORK), help="teacher checkpoint folder")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="student int8 artifact folder")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    run(args.stage, work=args.work, out=args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
