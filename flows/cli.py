"""How a stage flow runs as a DVC command: ``python -m flows.<stage> [--variant]``, one way for every stage.

Each flow module declares its :class:`Stage` as ``STAGE``; its ``__main__`` is ``STAGE.main()``,
and :mod:`flows.pipeline` finds the same object from the stage's command in dvc.yaml.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Variant = tuple[Callable[[], Any], str]  # the function a flag runs, and the flag's help


@dataclass(frozen=True)
class Stage:
    """A stage's flow, the errors that are the user's to fix, and its variant flags (``{"--flag": variant}``)."""

    name: str
    flow: Callable[[], Any]
    expected: tuple[type[BaseException], ...]
    variants: dict[str, Variant] = field(default_factory=dict)

    def command(self, argv: list[str]) -> Callable[[], Any]:
        """The function ``argv`` (the command's flags) runs: a variant's, or the stage's flow."""
        parser = argparse.ArgumentParser(
            prog=f"python -m flows.{self.name}", description=f"The {self.name} stage, configured by params.yaml."
        )
        for flag, (_, help_text) in self.variants.items():
            parser.add_argument(flag, action="store_true", help=help_text)
        given = vars(parser.parse_args(argv))
        return next((run for flag, (run, _) in self.variants.items() if given[flag[2:].replace("-", "_")]), self.flow)

    def main(self, argv: list[str] | None = None) -> Any:
        """Run the command ``argv`` names; an expected error becomes one line on stderr and exit status 1.

        Options come from the stage's section of params.yaml, never from the command line.
        """
        run = self.command(sys.argv[1:] if argv is None else argv)
        try:
            return run()
        except self.expected as error:
            print(f"{self.name} failed: {error}", file=sys.stderr)
            sys.exit(1)
