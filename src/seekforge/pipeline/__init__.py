"""The pipeline: ``run`` chains data -> train -> evaluate -> package -> report."""

from seekforge.pipeline._gates import PipelineResult, check_gates, pipeline
from seekforge.pipeline._k8s import trainjob
from seekforge.pipeline._retrain import Retrained, retrain
from seekforge.pipeline._run import RunResult, join, run

__all__ = ["PipelineResult", "Retrained", "RunResult", "check_gates", "join", "pipeline", "retrain", "run", "trainjob"]
