"""Building a package from a recipe: prepare the data (split, fit the preprocessor, encode, sketch), fit
the model (one process or DDP), and finish (evaluate on the test split, write the package and its report).

``seekforge.pipeline.run`` chains these; ``tune`` and ``compress`` reuse them for their trials and variants.
"""

from seekforge.build._card import model_card
from seekforge.build._finish import Built, finish
from seekforge.build._fit import (
    build_seeded_model,
    calibrated,
    distill_exit_heads,
    fit,
    hold_exit_heads,
    model_io,
    write_trained,
)
from seekforge.build._prepare import SAMPLE_ROWS, Prepared, load_prepared, preparation_key, prepare
from seekforge.build._report import render_report

__all__ = [
    "SAMPLE_ROWS",
    "Built",
    "Prepared",
    "build_seeded_model",
    "calibrated",
    "distill_exit_heads",
    "finish",
    "fit",
    "hold_exit_heads",
    "load_prepared",
    "model_card",
    "model_io",
    "preparation_key",
    "prepare",
    "render_report",
    "write_trained",
]
