"""Monitoring: reference sketches of the training data (drift reports build on them)."""

from seekforge.monitor._reference import build_reference

__all__ = ["build_reference"]
