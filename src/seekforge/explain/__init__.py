"""Explanations of a package's predictions: which inputs each prediction rests on.

Tables get SHAP values (shap's exact or permutation explainer on the package's own model), text and images
integrated gradients (captum), or occlusion for any of them; every explanation is checked for completeness
(the attributions add up to the output minus the base) and for faithfulness (removing the inputs with the
largest attributions moves the output more than removing random ones).

Example:
    >>> from seekforge.explain import explain, write_explanation
    >>> found = explain("runs/breast_cancer/<stamp>/package", frame, rows=100)
    >>> found.importance()[:3]
    >>> write_explanation(found, "explain/")
    >>> look_inside(load_model("runs/reviews/<stamp>/package"), row=0).attention  # per layer [heads, tokens, tokens]
"""

from seekforge.explain._explain import MAX_ROWS, METHODS, Explanation, explain
from seekforge.explain._inside import Inside, look_inside
from seekforge.explain._model import ExplainedModel, load_model
from seekforge.explain._write import write_explanation

__all__ = [
    "MAX_ROWS",
    "METHODS",
    "ExplainedModel",
    "Explanation",
    "Inside",
    "explain",
    "load_model",
    "look_inside",
    "write_explanation",
]
