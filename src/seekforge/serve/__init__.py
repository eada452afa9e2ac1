"""Serving: the Predictor runtime, and one process that answers HTTP and gRPC with dynamic batching.

Names are imported lazily: a server over a package's raw-input ONNX export runs without torch.

Example:
    >>> from seekforge.serve import ModelService, ServeConfig, serve
    >>> service = ModelService("runs/breast_cancer/<stamp>/package", ServeConfig(max_batch_rows=64))
    >>> asyncio.run(serve(service, http_port=8000, grpc_port=50051))
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from seekforge.core.prediction_log import PredictionLog, log_state
    from seekforge.serve._batcher import DeadlineExceeded, DynamicBatcher, Overloaded, ShuttingDown
    from seekforge.serve._deploy import dockerfile, kubernetes
    from seekforge.serve._load import full_install, load
    from seekforge.serve._predictor import Predictor, to_frame
    from seekforge.serve._server import Listening, serve
    from seekforge.serve._service import ModelService
    from seekforge.serve.config import ServeConfig

_LAZY = {
    "Predictor": "seekforge.serve._predictor",
    "load": "seekforge.serve._load",
    "full_install": "seekforge.serve._load",
    "to_frame": "seekforge.serve._predictor",
    "DynamicBatcher": "seekforge.serve._batcher",
    "Overloaded": "seekforge.serve._batcher",
    "DeadlineExceeded": "seekforge.serve._batcher",
    "ShuttingDown": "seekforge.serve._batcher",
    "PredictionLog": "seekforge.core.prediction_log",
    "log_state": "seekforge.core.prediction_log",
    "ModelService": "seekforge.serve._service",
    "ServeConfig": "seekforge.serve.config",
    "serve": "seekforge.serve._server",
    "Listening": "seekforge.serve._server",
    "dockerfile": "seekforge.serve._deploy",
    "kubernetes": "seekforge.serve._deploy",
}

__all__ = [
    "DeadlineExceeded",
    "DynamicBatcher",
    "Listening",
    "ModelService",
    "Overloaded",
    "PredictionLog",
    "Predictor",
    "ServeConfig",
    "ShuttingDown",
    "dockerfile",
    "full_install",
    "kubernetes",
    "load",
    "log_state",
    "serve",
    "to_frame",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'seekforge.serve' has no attribute '{name}'")
