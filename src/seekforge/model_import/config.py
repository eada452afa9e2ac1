"""What a model made elsewhere takes and gives (``seekforge import --inputs spec.yaml``): the features its
graph input is made of (the recipe's ``features`` section: numbers, in the order of the tensor's columns,
and the label column of the test rows), the classes in the order of its output's columns, and which graph
input and output these are."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from seekforge.core.config import BaseConfig
from seekforge.data.config import FeaturesConfig
from seekforge.train.config import ClassName


class GraphBinding(BaseConfig):
    """``input``: the graph input the features fill as one float tensor ``[rows, features]`` (default: the
    graph's only input); ``output``: the graph output read (default: its first); ``scores``: what that
    output holds for a classifier, ``logits`` or ``probabilities`` (a regressor's holds the values)."""

    input: Annotated[str, Field(min_length=1)] | None = None
    output: Annotated[str, Field(min_length=1)] | None = None
    scores: Literal["logits", "probabilities"] = "logits"


class ImportSpec(BaseConfig):
    """An imported model's declaration. ``classes`` (a classifier): its classes in the order of the output's
    columns; the labels of the test rows must be among them."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100)] | None = None
    features: FeaturesConfig
    classes: Annotated[list[ClassName], Field(min_length=2)] | None = None
    graph: GraphBinding = GraphBinding()
    seed: Annotated[int, Field(ge=0, lt=2**31)] = 0

    @model_validator(mode="after")
    def _fits(self) -> ImportSpec:
        others = [f"{f.name} ({f.type})" for f in self.features.inputs if f.type != "numeric" or f.history]
        if others:
            raise ValueError(f"features.inputs: an imported graph takes numeric inputs, not {', '.join(others)}")
        classifier = self.features.output.type != "numeric"
        if classifier and self.classes is None:
            raise ValueError("classes: a classifier's classes, in the order of its output's columns, are required")
        if not classifier and self.classes is not None:
            raise ValueError("classes: a regressor (features.output.type numeric) has none")
        if self.classes is not None and len(set(map(str, self.classes))) != len(self.classes):
            raise ValueError(f"classes: {self.classes} names a class twice")
        return self
