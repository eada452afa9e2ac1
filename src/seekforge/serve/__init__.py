"""Serving: the Predictor runtime (HTTP and gRPC servers build on it)."""

from seekforge.serve._predictor import Predictor, build_model, evaluate_logits, load, to_frame

__all__ = ["Predictor", "build_model", "evaluate_logits", "load", "to_frame"]
