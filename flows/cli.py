"""How a stage flow runs as a DVC command: ``python -m flows.<stage> [--variant]``, one way for every stage."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def run_stage(
    name: str,
    flow: Callable[[], T],
    expected: tuple[type[BaseException], ...],
    variants: dict[str, tuple[Callable[[], T], str]] | None = None,
    argv: list[str] | None = None,
) -> T:
    """Run ``flow``, or the variant whose flag ``argv`` gives (``{"--flag": (function, help)}``).

    Options come from the stage's section of params.yaml, never from the command line. An
    expected error (bad input or params) becomes one line on stderr and exit status 1.
    """
    variants = variants or {}
    parser = argparse.ArgumentParser(
        prog=f"python -m flows.{name}", description=f"The {name} stage, configured by params.yaml's sections."
    )
    for flag, (_, help_text) in variants.items():
        parser.add_argument(flag, action="store_true", help=help_text)
    chosen = vars(parser.parse_args(argv))
    run = next(
        (function for flag, (function, _) in variants.items() if chosen[flag.lstrip("-").replace("-", "_")]), flow
    )
    try:
        return run()
    except expected as error:
        print(f"{name} failed: {error}", file=sys.stderr)
        sys.exit(1)
