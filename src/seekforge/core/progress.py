"""Rich progress bars shared by every long-running stage."""

from __future__ import annotations

import os
import sys

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console(stderr=True)


def progress_enabled() -> bool:
    """Progress bars are drawn on a terminal unless ``SEEKFORGE_NO_PROGRESS`` is set."""
    return not os.environ.get("SEEKFORGE_NO_PROGRESS") and sys.stderr.isatty()


def make_progress(*, transient: bool = False, disable: bool | None = None) -> Progress:
    """A progress bar with count, ETA and a free-text status field (``status=...``)."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
        console=console,
        transient=transient,
        disable=not progress_enabled() if disable is None else disable,
        refresh_per_second=4,
    )
