"""seekforge studio: a local web app over the runs under a folder: a paginated, sortable table of runs, each
run's curves growing while it trains, several runs overlaid with their recipes' differences. It only reads
what runs write.

Example:
    >>> from seekforge.studio import create_app
    >>> app = create_app(Path("runs"))   # an ASGI app; ``seekforge studio`` serves it on 127.0.0.1
"""

from __future__ import annotations

from seekforge.studio._app import create_app
from seekforge.studio._runs import Curves, RunIndex, RunSummary, curves

__all__ = ["Curves", "RunIndex", "RunSummary", "create_app", "curves"]
