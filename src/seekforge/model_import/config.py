"""What a model made elsewhere takes and gives (``seekforge import --inputs spec.yaml``): the features its
graph input is made of (the recipe's ``features`` section: numbers, in the order of the tensor's columns;
one image, resized to ``size`` and normalised with the declared ``normalize``; or one text, tokenized by
the declared ``tokenizer``), the label column of the test rows, the classes in the order of its output's
columns, and which graph inputs and output these are."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from seekforge.core.config import BaseConfig
from seekforge.data.config import FeaturesConfig
from seekforge.train.config import ClassName


class GraphBinding(BaseConfig):
    """``input``: the graph input the features fill as one float tensor ``[rows, features]`` (default: the
    graph's only input); for a text, ``ids``, ``mask`` and ``segments``: the graph inputs of its token ids,
    attention mask and segment ids (fed zeros), by default those named ``input_ids``, ``attention_mask``
    and ``token_type_ids`` where the graph has them; ``output``: the graph output read (default: its
    first); ``scores``: what that output holds for a classifier, ``logits`` or ``probabilities`` (a
    regressor's holds the values)."""

    input: Annotated[str, Field(min_length=1)] | None = None
    ids: Annotated[str, Field(min_length=1)] | None = None
    mask: Annotated[str, Field(min_length=1)] | None = None
    segments: Annotated[str, Field(min_length=1)] | None = None
    output: Annotated[str, Field(min_length=1)] | None = None
    scores: Literal["logits", "probabilities"] = "logits"


class Normalize(BaseConfig):
    """How an image model's pixels were normalised in training: ``(pixel / 255 - mean) / std`` per channel
    (ImageNet's: mean [0.485, 0.456, 0.406], std [0.229, 0.224, 0.225]); by default pixels in [0, 1]."""

    mean: Annotated[list[float], Field(min_length=1, max_length=3)] | None = None
    std: Annotated[list[Annotated[float, Field(gt=0)]], Field(min_length=1, max_length=3)] | None = None


class ImportSpec(BaseConfig):
    """An imported model's declaration. ``classes`` (a classifier): its classes in the order of the output's
    columns; the labels of the test rows must be among them (a Hugging Face folder's come from its
    config). ``normalize``: an image model's. ``tokenizer``: a text model's ``tokenizer.json``, or the
    folder holding it (a Hugging Face folder's own by default)."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100)] | None = None
    features: FeaturesConfig
    classes: Annotated[list[ClassName], Field(min_length=2)] | None = None
    graph: GraphBinding = GraphBinding()
    normalize: Normalize = Normalize()
    tokenizer: Annotated[str, Field(min_length=1)] | None = None
    seed: Annotated[int, Field(ge=0, lt=2**31)] = 0

    @property
    def image(self) -> bool:
        return self.features.inputs[0].type == "image"

    @property
    def text(self) -> bool:
        return self.features.inputs[0].type == "text"

    @model_validator(mode="before")
    @classmethod
    def _unscaled(cls, data: Any) -> Any:
        """A number goes in as it is unless the declaration scales it (a recipe's default is to standardise:
        a graph made elsewhere was trained on its own scaling, which it holds)."""
        features = data.get("features") if isinstance(data, dict) else None
        inputs = features.get("inputs") if isinstance(features, dict) else None
        if isinstance(inputs, list):
            features["inputs"] = [{**f, "scaler": f.get("scaler", "none")} if isinstance(f, dict) and
                                  f.get("type") == "numeric" else f for f in inputs]  # fmt: skip
        return data

    @model_validator(mode="after")
    def _fits(self) -> ImportSpec:
        inputs = self.features.inputs
        image = len(inputs) == 1 and inputs[0].type == "image"
        text = len(inputs) == 1 and inputs[0].type == "text"
        others = [f"{f.name} ({f.type})" for f in inputs if f.type != "numeric" or getattr(f, "history", None)]
        if others and not (image or text):
            raise ValueError(f"features.inputs: an imported graph takes numeric inputs, one image or one text, not "
                             f"{', '.join(others)}")  # fmt: skip
        if (self.normalize.mean is not None or self.normalize.std is not None) and not image:
            raise ValueError("normalize: only an image model's pixels are normalised")
        if self.tokenizer is not None and not text:
            raise ValueError("tokenizer: only a text model's input is tokenized")
        text_bindings = [f"graph.{b}" for b in ("ids", "mask", "segments") if getattr(self.graph, b) is not None]
        if text_bindings and not text:
            raise ValueError(f"{', '.join(text_bindings)}: only a text model's graph takes token inputs; "
                             "name its one input with graph.input")  # fmt: skip
        if text and self.graph.input is not None:
            raise ValueError("graph.input: a text model's graph inputs are named with graph.ids, graph.mask and "
                             "graph.segments")  # fmt: skip
        if self.normalize.mean is not None and self.normalize.std is not None and (
                len(self.normalize.mean) != len(self.normalize.std)):  # fmt: skip
            raise ValueError("normalize: mean and std need one value per channel each")
        classifier = self.features.output.type != "numeric"
        if not classifier and self.classes is not None:
            raise ValueError("classes: a regressor (features.output.type numeric) has none")
        if self.classes is not None and len(set(map(str, self.classes))) != len(self.classes):
            raise ValueError(f"classes: {self.classes} names a class twice")
        if self.features.output.type == "binary" and self.classes is not None and len(self.classes) != 2:
            raise ValueError(f"classes: a binary output has two classes, not {len(self.classes)}; declare the output "
                             "as type category")  # fmt: skip
        return self
