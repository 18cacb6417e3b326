"""How a stage flow runs as a DVC command."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def run_stage(name: str, flow: Callable[[], T], expected: tuple[type[BaseException], ...]) -> T:
    """Run ``flow``; an expected error (bad input or params) becomes one line on stderr and exit status 1."""
    try:
        return flow()
    except expected as error:
        print(f"{name} failed: {error}", file=sys.stderr)
        sys.exit(1)
