"""Rich progress bars shared by every long-running stage."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator

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


_shown: Progress | None = None


@contextlib.contextmanager
def progress_task(description: str, total: float | None, *, show: bool = True) -> Iterator[Callable[..., None]]:
    """A task on the progress display, removed when done; nested tasks share the display already shown
    (rich allows one live display at a time). Yields ``advance(n=1, status="")``.

    ``show=False`` keeps a task out of sight (a small file being read) without hiding the others.
    """
    global _shown
    outer = _shown is None
    bar = make_progress(transient=True) if outer else _shown
    assert bar is not None
    with contextlib.ExitStack() as stack:
        if outer:
            stack.enter_context(bar)
            _shown = bar
            stack.callback(_forget)
        task = bar.add_task(description, total=total, status="", visible=show)
        stack.callback(bar.remove_task, task)

        def advance(n: float = 1, status: str | None = None) -> None:
            bar.update(task, advance=n, **({"status": status} if status is not None else {}))

        yield advance


def _forget() -> None:
    global _shown
    _shown = None


_label = ""


@contextlib.contextmanager
def log_label(text: str) -> Iterator[None]:
    """Lines logged inside (a trial's epochs, say) start with ``text``, so the lines of several trials or
    workers in one log can be told apart."""
    global _label
    before, _label = _label, f"{text}  "
    try:
        yield
    finally:
        _label = before


def labelled(line: str) -> str:
    """``line`` with the current :func:`log_label` in front."""
    return _label + line
