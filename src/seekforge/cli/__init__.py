"""The ``seekforge`` command line: a thin shell over the Python API."""

from seekforge.cli._app import app, main

__all__ = ["app", "main"]
