"""The pipeline: ``run`` chains data -> train -> evaluate -> package -> report."""

from seekforge.pipeline._k8s import trainjob
from seekforge.pipeline._retrain import Retrained, retrain
from seekforge.pipeline._run import RunResult, join, run

__all__ = ["Retrained", "RunResult", "join", "retrain", "run", "trainjob"]
