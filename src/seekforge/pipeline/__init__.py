"""The pipeline: ``run`` chains data -> train -> evaluate -> package -> report."""

from seekforge.pipeline._run import RunResult, run

__all__ = ["RunResult", "run"]
