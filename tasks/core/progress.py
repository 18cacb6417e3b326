"""Progress of long work: one terminal bar and, inside a Prefect run, one progress artifact.

Every long stage (pruning, cross-validation and each of its jobs, training, generation) reports
through :class:`Progress`: a tqdm bar on stderr with the count, the rate and the time left, and,
when the code runs inside a Prefect flow or task run, a progress artifact (percent done, with the
same count, rate and time left as its description) that moves while the work does. Outside a
Prefect run nothing is sent anywhere, and a process that never imported Prefect does not import it.

Work done in a child process (the training ranks) reports by printing :func:`progress_line`;
the parent reads the child's output and hands each line to :meth:`Progress.follow`, which moves
its bar on those lines, wherever a launcher's prefix put them, and ignores the others.
"""

from __future__ import annotations

import logging
import re
import sys
import time

from tqdm import tqdm

ARTIFACT_INTERVAL_S = 5.0  # an artifact is sent to the Prefect API at most this often (and once at the end)
TERMINAL_REFRESH_S = 1.0  # the bar redraws at most this often on a terminal...
LOG_REFRESH_S = 30.0  # ...and in a log file or pipe, where every redraw is kept
ARTIFACT_FORMAT = "{desc}: {n_fmt}/{total_fmt} {unit} [{elapsed}<{remaining}, {rate_fmt}{postfix}]"
PROGRESS_LINE = re.compile(r"\[progress\] (\d+)/(\d+)(?: (.*))?$")
log = logging.getLogger(__name__)


class Progress:
    """``total`` units of work (None: not known yet) shown as a tqdm bar and, in a Prefect run, an artifact ``key``.

    Guarantees: the bar on stderr shows done/total, the rate and the estimated time left, redrawn
    at most every :data:`TERMINAL_REFRESH_S` on a terminal, :data:`LOG_REFRESH_S` elsewhere. Inside
    a Prefect flow or task run, a progress artifact under ``key`` (lowered, other characters than
    letters, digits and dashes made dashes) holds ``100 * done / total`` with the same numbers as
    its description; it is created at once, updated at most every ``interval_s`` seconds and
    once more at :meth:`close`, so it ends at the final count. An API failure is logged once and
    stops the artifact, never the work. ``initial``: units already done before (a resumed run);
    the rate counts only the units done here.
    """

    def __init__(
        self,
        total: int | None,
        desc: str,
        unit: str = "it",
        key: str | None = None,
        initial: int = 0,
        interval_s: float = ARTIFACT_INTERVAL_S,
    ):
        refresh_s = TERMINAL_REFRESH_S if sys.stderr.isatty() else LOG_REFRESH_S
        self.bar = tqdm(total=total, desc=desc, unit=unit, initial=initial, mininterval=refresh_s, file=sys.stderr)
        self.interval_s = interval_s
        self.key = key and re.sub(r"[^a-z0-9-]+", "-", key.lower()).strip("-")
        self.artifact = _create_artifact(self.key, self.percent, self.meter) if self.key and in_prefect_run() else None
        self.sent_at = time.monotonic()

    @property
    def percent(self) -> float:
        """Percent of ``total`` done; 0 while the total is unknown."""
        return 100.0 * self.bar.n / self.bar.total if self.bar.total else 0.0

    @property
    def meter(self) -> str:
        """The bar's numbers without the bar: ``desc: done/total unit [elapsed<left, rate, note]``."""
        return tqdm.format_meter(**{**self.bar.format_dict, "bar_format": ARTIFACT_FORMAT})

    def update(self, n: int = 1) -> None:
        """Count ``n`` more units done."""
        self.bar.update(n)
        self._send()

    def reach(self, n: int, total: int) -> None:
        """Move to ``n`` of ``total`` done; a new total (the first one known, say) restarts the rate from ``n``."""
        if total != self.bar.total:
            self.bar.reset(total)
            self.bar.initial = self.bar.n = self.bar.last_print_n = n
            self.bar.refresh()
        else:
            self.bar.update(n - self.bar.n)
        self._send()

    def note(self, text: str) -> None:
        """Show ``text`` after the rate (the epoch, the test set at hand); the artifact gets it with the next update."""
        self.bar.set_postfix_str(text, refresh=False)

    def follow(self, line: str) -> bool:
        """Apply a child process's :func:`progress_line` (note, then count); False, and nothing done, otherwise."""
        match = PROGRESS_LINE.search(line)
        if match is None:
            return False
        self.note(match[3] or "")
        self.reach(int(match[1]), int(match[2]))
        return True

    def close(self) -> None:
        """Send the final count to the artifact and leave the bar's last line on the terminal."""
        self._send(force=True)
        self.bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _send(self, force: bool = False) -> None:
        if self.artifact is None or not (force or time.monotonic() - self.sent_at >= self.interval_s):
            return
        from prefect.artifacts import update_progress_artifact

        try:
            update_progress_artifact(self.artifact, self.percent, description=self.meter)
        except Exception as error:  # the API being away must not stop hours of work
            log.warning("progress artifact of %s: %s; no further updates", self.bar.desc, error)
            self.artifact = None
        self.sent_at = time.monotonic()


def in_prefect_run() -> bool:
    """Whether this thread runs in a Prefect flow or task run (False, and no import, if Prefect was never imported)."""
    if "prefect" not in sys.modules:
        return False
    from prefect.context import FlowRunContext, TaskRunContext

    return FlowRunContext.get() is not None or TaskRunContext.get() is not None


def _create_artifact(key: str, percent: float, description: str):
    """The id of a new progress artifact, or None (logged) when the API refuses it."""
    from prefect.artifacts import create_progress_artifact

    try:
        return create_progress_artifact(percent, key=key, description=description)
    except Exception as error:  # as in Progress._send: the work goes on without the artifact
        log.warning("progress artifact %s: %s; going on without it", key, error)
        return None


def progress_line(n: int, total: int, note: str = "") -> str:
    """The line a child process prints to report ``n`` of ``total`` done (``note``: shown after the rate)."""
    return f"[progress] {n}/{total} {note}".rstrip()
